package contact

import (
	"strings"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// MaxMembersPerCall bounds one assign or remove call.
const MaxMembersPerCall = 10_000

// Group is the state of one contact group stream (its name; membership lives in the read model
// and in the events, not in this state, so that large groups load fast).
type Group struct {
	id, workspaceID   uuid.UUID
	name, description string
	deleted           bool
}

// Evolve folds one event into the state.
// GroupStateEvents are the events Evolve folds: the group's life, not its member lists, which
// the read model keeps. Loading a group reads these only.
var GroupStateEvents = []string{EventGroupCreated, EventGroupUpdated, EventGroupDeleted}

func (g *Group) Evolve(ev any) {
	switch e := ev.(type) {
	case GroupCreated:
		g.id, g.workspaceID, g.name, g.description = e.GroupID, e.WorkspaceID, e.Name, e.Description
	case GroupUpdated:
		g.name, g.description = e.Name, e.Description
	case GroupDeleted:
		g.deleted = true
	}
}

// GroupClaimScope is the scope of the unique claims that make a group name belong to at most one
// group of a workspace, whatever its case; a claim's key is the blind index of
// GroupNameBlindInput.
const GroupClaimScope = "contact-group-name"

// GroupNameBlindInput is what the claim key of a (cleaned) group name in a workspace is computed
// from.
func GroupNameBlindInput(ws uuid.UUID, name string) string {
	return ws.String() + "|" + strings.ToLower(name)
}

// CleanGroupName is the name as a group would keep it, or why it cannot be a group's name.
func CleanGroupName(name string) (string, error) {
	n, _, err := cleanGroup(name, "")
	return n, err
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// Exists reports whether the group was created and not deleted.
func (g *Group) Exists() bool { return g.id != uuid.Nil && !g.deleted }

// WorkspaceID is the group's workspace.
func (g *Group) WorkspaceID() uuid.UUID { return g.workspaceID }

func cleanGroup(name, description string) (string, string, error) {
	var errs fault.List
	n, err := identity.CleanText("name", "Group name", name, 1, 100)
	if err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	d, err := identity.CleanText("description", "Description", description, 0, 1000)
	if err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	if len(errs) > 0 {
		return "", "", errs
	}
	return n, d, nil
}

// CreateGroup decides a new group.
func CreateGroup(id, workspaceID uuid.UUID, name, description string) ([]any, error) {
	n, d, err := cleanGroup(name, description)
	if err != nil {
		return nil, err
	}
	return []any{GroupCreated{GroupID: id, WorkspaceID: workspaceID, Name: n, Description: d}}, nil
}

// Update decides a rename or a new description; nil leaves a field as it is.
func (g *Group) Update(name, description *string) ([]any, error) {
	if !g.Exists() {
		return nil, fault.New(fault.NotFound, "Contact group not found.")
	}
	n, d := g.name, g.description
	if name != nil {
		n = *name
	}
	if description != nil {
		d = *description
	}
	n, d, err := cleanGroup(n, d)
	if err != nil {
		return nil, err
	}
	if n == g.name && d == g.description {
		return nil, nil
	}
	return []any{GroupUpdated{GroupID: g.id, WorkspaceID: g.workspaceID, Name: n, Description: d}}, nil
}

// Delete decides the removal of the group.
func (g *Group) Delete() ([]any, error) {
	if !g.Exists() {
		return nil, fault.New(fault.NotFound, "Contact group not found.")
	}
	return []any{GroupDeleted{GroupID: g.id, WorkspaceID: g.workspaceID}}, nil
}

func uniqueIDs(ids []uuid.UUID) ([]uuid.UUID, error) {
	if len(ids) == 0 {
		return nil, fault.InvalidField("contactIds", "REQUIRED", "Give at least one contact.")
	}
	if len(ids) > MaxMembersPerCall {
		return nil, fault.InvalidField("contactIds", "TOO_MANY", "At most %d contacts per call.", MaxMembersPerCall)
	}
	seen := make(map[uuid.UUID]bool, len(ids))
	out := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// AddMembers decides adding contacts (already checked to be the workspace's) to the group.
func (g *Group) AddMembers(ids []uuid.UUID) ([]any, error) {
	if !g.Exists() {
		return nil, fault.New(fault.NotFound, "Contact group not found.")
	}
	u, err := uniqueIDs(ids)
	if err != nil {
		return nil, err
	}
	return []any{MembersAdded{GroupID: g.id, WorkspaceID: g.workspaceID, ContactIDs: u}}, nil
}

// RemoveMembers decides taking contacts out of the group.
func (g *Group) RemoveMembers(ids []uuid.UUID) ([]any, error) {
	if !g.Exists() {
		return nil, fault.New(fault.NotFound, "Contact group not found.")
	}
	u, err := uniqueIDs(ids)
	if err != nil {
		return nil, err
	}
	return []any{MembersRemoved{GroupID: g.id, WorkspaceID: g.workspaceID, ContactIDs: u}}, nil
}
