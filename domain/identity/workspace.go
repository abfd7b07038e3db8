package identity

import (
	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// Workspace is the state of one workspace stream, folded from its events.
type Workspace struct {
	id          uuid.UUID
	name        string
	members     map[uuid.UUID]Role
	invitations map[uuid.UUID]*invitation
	settings    Settings
	version     int64
}

// WorkspaceStream is the stream id of a workspace.
func WorkspaceStream(id uuid.UUID) string { return "workspace-" + id.String() }

// ID is the workspace's id; zero while it does not exist.
func (w *Workspace) ID() uuid.UUID { return w.id }

// Exists reports whether the workspace was created.
func (w *Workspace) Exists() bool { return w.id != uuid.Nil }

// Settings are the current settings.
func (w *Workspace) Settings() Settings { return w.settings }

// RoleOf is the user's role and whether the user is a member.
func (w *Workspace) RoleOf(user uuid.UUID) (Role, bool) {
	r, ok := w.members[user]
	return r, ok
}

// Version is the number of events folded.
func (w *Workspace) Version() int64 { return w.version }

// Evolve folds one event into the state.
func (w *Workspace) Evolve(ev any) {
	w.version++
	switch e := ev.(type) {
	case WorkspaceCreated:
		w.id, w.name, w.settings = e.WorkspaceID, e.Name, e.Settings
		w.members = map[uuid.UUID]Role{e.OwnerID: RoleOwner}
	case MemberAdded:
		if w.members == nil {
			w.members = map[uuid.UUID]Role{}
		}
		w.members[e.UserID] = e.Role
	case WorkspaceSettingsUpdated:
		w.settings = e.Settings
	case MemberRoleChanged:
		if _, ok := w.members[e.UserID]; ok {
			w.members[e.UserID] = e.Role
		}
	case MemberRemoved:
		delete(w.members, e.UserID)
	case MemberInvited:
		if w.invitations == nil {
			w.invitations = map[uuid.UUID]*invitation{}
		}
		w.invitations[e.InvitationID] = &invitation{email: e.Email, role: e.Role, codeHash: e.CodeHash, expiresAt: e.ExpiresAt}
	case InvitationAccepted:
		if inv := w.invitations[e.InvitationID]; inv != nil {
			inv.status = invitationAccepted
		}
	case InvitationRevoked:
		if inv := w.invitations[e.InvitationID]; inv != nil {
			inv.status = invitationRevoked
		}
	}
}

// CreateWorkspace decides the events of a new workspace owned by owner.
func CreateWorkspace(id, owner uuid.UUID, name string) ([]any, error) {
	clean, err := CleanText("name", "Workspace name", name, 1, 80)
	if err != nil {
		return nil, err
	}
	return []any{
		WorkspaceCreated{WorkspaceID: id, Name: clean, OwnerID: owner, Settings: DefaultSettings()},
		MemberAdded{WorkspaceID: id, UserID: owner, Role: RoleOwner},
	}, nil
}

// UpdateSettings decides the change of settings by actor. Only owners and admins may change
// settings; a patch that changes nothing records nothing.
func (w *Workspace) UpdateSettings(actor uuid.UUID, p SettingsPatch) ([]any, error) {
	if !w.Exists() {
		return nil, fault.New(fault.NotFound, "Workspace not found.")
	}
	role, ok := w.members[actor]
	if !ok {
		return nil, fault.New(fault.NotFound, "Workspace not found.")
	}
	if !role.CanAdminister() {
		return nil, fault.New(fault.Forbidden, "Only owners and admins can change workspace settings.")
	}
	next, changed, err := w.settings.Apply(p)
	if err != nil {
		return nil, err
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []any{WorkspaceSettingsUpdated{WorkspaceID: w.id, Settings: next, Changed: changed}}, nil
}
