// Package graphql serves the product's GraphQL API: resolvers translate GraphQL to commands and
// read-model queries and back, nothing more. Generated code lives in graphql/generated and
// graphql/model; this file holds the resolvers' dependencies and is never regenerated.
package graphql

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/projections"
)

// Waiter blocks until read models have caught up with a log position (read your writes).
type Waiter interface {
	WaitFor(ctx context.Context, cp projections.Position, names ...string) error
}

// WorkspaceLog reads a workspace's events in log order (projections.WorkspaceLog).
type WorkspaceLog interface {
	Read(ctx context.Context, workspaceID uuid.UUID, after projections.Position, limit int, types []string) ([]*projections.LoggedEvent, error)
}

// LiveFeed delivers a workspace's events as they are appended, by any server process.
type LiveFeed interface {
	Subscribe(workspaceID uuid.UUID, types []string) (<-chan *projections.LoggedEvent, func())
}

// UsageTracker remembers when API tokens and sessions were last used, without a write per
// request.
type UsageTracker interface {
	Touch(tokenID uuid.UUID, at time.Time)
	TouchSession(sessionID uuid.UUID, at time.Time)
}

// ImportFiles stores uploaded contact lists until their import ends.
type ImportFiles interface {
	Save(ctx context.Context, id uuid.UUID, r io.Reader) (size int64, sha256 string, err error)
	// Check reads the start of an upload: a fault.Invalid error says why it is no contact list
	// (not text, no phone column).
	Check(r io.Reader) error
	Remove(id uuid.UUID)
}

// Importer runs contact imports in the background; Wake tells it an import was just started,
// so it need not wait for its next look.
type Importer interface {
	Wake()
}

// Resolver holds the dependencies of every resolver.
type Resolver struct {
	progress  progressHub
	Commands  *commands.Handlers
	Identity  *projections.IdentityQueries
	APITokens *projections.APITokenQueries
	Contacts  *projections.ContactQueries
	// WhatsAppAccounts reads the accounts; Pairing gives their pairings' updates.
	WhatsAppAccounts *projections.WhatsAppAccountQueries
	Pairing          PairingWatcher
	// MediaFiles keeps uploaded media.
	MediaFiles MediaFiles
	// Templates reads the message templates and uploaded media.
	Templates *projections.TemplateQueries
	Campaigns *projections.CampaignQueries
	// Simulator is the simulated WhatsApp's controls; nil with a real gateway.
	Simulator SimulatorControls
	// Credentials authenticates bearer tokens (sessions and API tokens) in one lookup.
	Credentials *projections.CredentialQueries
	Usage       UsageTracker
	AccessLog   AccessLog
	ImportFiles ImportFiles
	// Importer, when set, is woken when an import starts.
	Importer Importer
	Limits   *Limits
	// Now is the clock used for token expiry and grace periods; nil means time.Now.
	Now    func() time.Time
	Waiter Waiter
	// Log reads a workspace's logged events (the replay of workspaceEvents).
	Log    WorkspaceLog
	Feed   LiveFeed
	Logger *slog.Logger
	// SettleTimeout bounds how long a mutation waits for the read models to show its effect.
	SettleTimeout time.Duration
	// CredentialRecheck is how often an open WebSocket checks that its token still holds (not
	// revoked, expired, rotated out or, for a session, ended) and that its user is still a
	// member, in the role, of the workspaces its operations used; it closes when not. Zero means
	// 5 seconds. Every operation sent over the socket is checked as it starts, too.
	CredentialRecheck time.Duration

	// OperationTimeout bounds a query or mutation sent over HTTP, from when its body has been
	// read: its database statements are cancelled when it passes. Zero means 30 seconds.
	OperationTimeout time.Duration
	// SpoolDir is where uploads are written while their request runs (the system's temporary
	// directory when empty).
	SpoolDir string
	// SocketLimits bound WebSockets; zero fields mean the defaults.
	SocketLimits SocketLimits
	// DocLimits bound the documents the server accepts; zero fields mean the defaults.
	DocLimits DocLimits

	cost                    *costLimit
	sockets                 *sockets
	uploads                 *uploads
	closeOnce, closeSockets sync.Once
	closingCh               chan struct{}
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// settle waits until the read models have applied the events of a mutation, so that its payload
// and the caller's next query see them. A timeout is logged, not failed: the write is durable.
func (r *Resolver) settle(ctx context.Context, cp projections.Position) {
	if cp == (projections.Position{}) || r.Waiter == nil {
		return
	}
	timeout := r.SettleTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.Waiter.WaitFor(wctx, cp); err != nil && r.Logger != nil {
		r.Logger.Warn("read models did not catch up with a mutation in time", "position", cp.String(), "err", err)
	}
}

func (r *Resolver) operationTimeout() time.Duration {
	if r.OperationTimeout > 0 {
		return r.OperationTimeout
	}
	return 30 * time.Second
}
