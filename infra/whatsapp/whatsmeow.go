package whatsapp

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gabriel-vasile/mimetype"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
)

// Client is the part of a whatsmeow.Client the gateway uses; tests give a fake one.
type Client interface {
	Connect() error
	Disconnect()
	Logout(ctx context.Context) error
	IsConnected() bool
	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	PairPhone(ctx context.Context, phone string, showPushNotification bool, clientType whatsmeow.PairClientType, clientDisplayName string) (string, error)
	AddEventHandlerWithSuccessStatus(handler whatsmeow.EventHandlerWithSuccessStatus) uint32
	SendMessage(ctx context.Context, to types.JID, message *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error)
	GetJoinedGroups(ctx context.Context) ([]*types.GroupInfo, error)
	Download(ctx context.Context, msg whatsmeow.DownloadableMessage) ([]byte, error)
	Upload(ctx context.Context, plaintext []byte, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error)
}

// MediaStore keeps media files (infra/blob.Dir): inbound ones are put, uploaded ones are sent.
type MediaStore interface {
	Put(ctx context.Context, key string, r io.Reader) (int64, string, error)
	Open(key string) (io.ReadCloser, error)
}

// ClientFactory makes the client of a device.
type ClientFactory func(device *store.Device, log waLog.Logger) Client

// retryStore is a client that can ask us for the messages recipients want again
// (whatsmeow.Client's GetMessageForRetry).
type retryStore interface {
	SetMessageForRetry(func(requester, to types.JID, id types.MessageID) *waE2E.Message)
}

// meowClient is whatsmeow.Client with its retry hook set by a method, as retryStore wants.
type meowClient struct{ *whatsmeow.Client }

func (c meowClient) SetMessageForRetry(f func(requester, to types.JID, id types.MessageID) *waE2E.Message) {
	c.GetMessageForRetry = f
}

// NewWhatsmeowClient is the real client: acknowledgements are sent only once our handlers
// have stored what arrived (SynchronousAck, as mautrix-whatsapp does), and it reconnects by
// itself after network drops.
func NewWhatsmeowClient(device *store.Device, log waLog.Logger) Client {
	c := whatsmeow.NewClient(device, log)
	c.SynchronousAck = true
	c.EnableAutoReconnect = true
	return meowClient{c}
}

// WhatsmeowOpts configure the whatsmeow gateway; the zero value means the defaults.
type WhatsmeowOpts struct {
	// NewClient makes each account's client (default NewWhatsmeowClient).
	NewClient ClientFactory
	// DisplayName is how a pair-code pairing names the device on the phone (default "Chrome (Linux)").
	DisplayName string
	// SentText finds the text of a message we sent, by account and message id, so that a
	// recipient whose phone asks for a retry (it could not decrypt the message) gets it, also
	// after our restart, when whatsmeow's own cache of recent sends is gone.
	SentText func(ctx context.Context, account uuid.UUID, messageID string) (string, bool)
	// Media keeps inbound media, downloaded as they arrive (WhatsApp's links expire); nil: media
	// are recorded by kind only.
	Media  MediaStore
	Logger *slog.Logger
}

// Whatsmeow is the gateway of real numbers: one whatsmeow store (sqlstore.Container) on the
// product's PostgreSQL through a single database/sql handle on the product's pool, however many
// accounts; one client per account.
type Whatsmeow struct {
	db        *sql.DB
	pool      *pgxpool.Pool
	container *sqlstore.Container
	opts      WhatsmeowOpts
	sink      Sink
	logger    *slog.Logger

	mu      sync.Mutex
	clients map[uuid.UUID]*meowAccount
	// uploads are media files uploaded to WhatsApp's media servers, by account and file: a
	// campaign's image is uploaded once, not once per recipient.
	uploads map[uploadKey]*OutgoingMedia
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type meowAccount struct {
	ref    whatsapp.AccountRef
	client Client
	device *store.Device
	// ctx ends when the account's client is forgotten (a new pairing, a logout, the close).
	ctx    context.Context
	cancel context.CancelFunc
}

// NewWhatsmeow opens whatsmeow's store on pool and upgrades its tables.
func NewWhatsmeow(ctx context.Context, pool *pgxpool.Pool, opts WhatsmeowOpts, sink Sink) (*Whatsmeow, error) {
	if opts.NewClient == nil {
		opts.NewClient = NewWhatsmeowClient
	}
	if opts.DisplayName == "" {
		opts.DisplayName = "Chrome (Linux)"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db := stdlib.OpenDBFromPool(pool)
	container := sqlstore.NewWithDB(db, "postgres", slogLogger{opts.Logger.With("component", "whatsmeow")})
	if err := container.Upgrade(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("upgrading whatsmeow's store: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	return &Whatsmeow{db: db, pool: pool, container: container, opts: opts, sink: sink, logger: opts.Logger,
		clients: map[uuid.UUID]*meowAccount{}, ctx: wctx, cancel: cancel}, nil
}

// DB is the one database/sql handle whatsmeow's store uses.
func (w *Whatsmeow) DB() *sql.DB { return w.db }

// client returns the account's client, making one on device when it has none.
func (w *Whatsmeow) client(ref whatsapp.AccountRef, device *store.Device) (*meowAccount, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if a := w.clients[ref.ID]; a != nil {
		return a, nil
	}
	a := &meowAccount{ref: ref, device: device}
	a.ctx, a.cancel = context.WithCancel(w.ctx)
	a.client = w.opts.NewClient(device, slogLogger{w.logger.With("account", ref.ID)})
	a.client.AddEventHandlerWithSuccessStatus(func(evt any) bool { return w.handle(a, evt) })
	if rs, ok := a.client.(retryStore); ok && w.opts.SentText != nil {
		rs.SetMessageForRetry(func(requester, to types.JID, id types.MessageID) *waE2E.Message {
			ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
			defer cancel()
			text, found := w.opts.SentText(ctx, ref.ID, string(id))
			if !found {
				return nil
			}
			msg, err := BuildMessage(text, nil)
			if err != nil {
				return nil
			}
			return msg
		})
	}
	w.clients[ref.ID] = a
	return a, nil
}

// forget drops the account's client, disconnected.
func (w *Whatsmeow) forget(id uuid.UUID) *meowAccount {
	w.mu.Lock()
	a := w.clients[id]
	delete(w.clients, id)
	w.mu.Unlock()
	if a != nil {
		a.cancel()
		a.client.Disconnect()
	}
	return a
}

// Pair links a new device: a QR channel (or, with pairPhone, a pair code once the connection is
// up) whose codes go to updates; PairSuccess is reported, then Connected.
func (w *Whatsmeow) Pair(ctx context.Context, ref whatsapp.AccountRef, pairPhone string, updates func(whatsapp.PairingUpdate)) error {
	w.forget(ref.ID) // a new pairing replaces whatever this account had in this process
	a, err := w.client(ref, w.container.NewDevice())
	if err != nil {
		return err
	}
	qr, err := a.client.GetQRChannel(a.ctx)
	if err != nil {
		w.forget(ref.ID)
		return fmt.Errorf("starting the pairing: %w", err)
	}
	if err := a.client.Connect(); err != nil {
		w.forget(ref.ID)
		return fmt.Errorf("connecting to pair: %w", err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		askedCode := false
		for {
			var item whatsmeow.QRChannelItem
			select {
			case <-a.ctx.Done():
				return
			case it, ok := <-qr:
				if !ok {
					return
				}
				item = it
			}
			u, final := pairingUpdate(item, time.Now())
			if u.Kind == whatsapp.PairingQRCode && pairPhone != "" {
				// The connection is up: ask for a pair code instead (once), as whatsmeow wants.
				if !askedCode {
					askedCode = true
					code, err := a.client.PairPhone(a.ctx, pairPhone, true, whatsmeow.PairClientChrome, w.opts.DisplayName)
					if err != nil {
						updates(whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "PAIR_CODE_REFUSED"})
						w.endPairing(a, whatsapp.ReasonPairingError)
						return
					}
					updates(whatsapp.PairingUpdate{Kind: whatsapp.PairingPairCode, Code: code, ExpiresAt: time.Now().Add(160 * time.Second)})
				}
				continue
			}
			updates(u)
			if final {
				switch u.Kind {
				case whatsapp.PairingTimeout:
					w.endPairing(a, whatsapp.ReasonPairingTimeout)
				case whatsapp.PairingError:
					w.endPairing(a, whatsapp.ReasonPairingError)
				}
				return
			}
		}
	}()
	return nil
}

// endPairing forgets a pairing that failed and records it.
func (w *Whatsmeow) endPairing(a *meowAccount, reason string) {
	w.mu.Lock()
	current := w.clients[a.ref.ID] == a
	w.mu.Unlock()
	if !current || a.ctx.Err() != nil {
		return // replaced by a newer pairing, logged out or closed meanwhile
	}
	w.forget(a.ref.ID)
	if err := w.sink.Report(w.ctx, a.ref, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: reason}); err != nil {
		w.logger.Error("recording a failed pairing", "account", a.ref.ID, "err", err)
	}
}

// pairingUpdate translates an item of whatsmeow's QR channel; final says the pairing ended.
func pairingUpdate(item whatsmeow.QRChannelItem, now time.Time) (whatsapp.PairingUpdate, bool) {
	switch item.Event {
	case whatsmeow.QRChannelEventCode:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingQRCode, Code: item.Code, ExpiresAt: now.Add(item.Timeout)}, false
	case whatsmeow.QRChannelSuccess.Event:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingSuccess}, true
	case whatsmeow.QRChannelTimeout.Event:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingTimeout}, true
	case whatsmeow.QRChannelClientOutdated.Event:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "CLIENT_OUTDATED"}, true
	case whatsmeow.QRChannelScannedWithoutMultidevice.Event:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "SCANNED_WITHOUT_MULTIDEVICE"}, true
	case whatsmeow.QRChannelEventError:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "PAIRING_FAILED"}, true
	}
	return whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "UNEXPECTED_STATE"}, true
}

// Connect connects a linked account's device; an account whose device whatsmeow's store no
// longer has is reported logged out.
func (w *Whatsmeow) Connect(ctx context.Context, ref whatsapp.AccountRef) error {
	var jid string
	err := w.pool.QueryRow(ctx, `SELECT jid FROM whatsapp_devices WHERE account_id = $1`, ref.ID).Scan(&jid)
	if errors.Is(err, pgx.ErrNoRows) {
		return w.sink.Report(ctx, ref, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout})
	}
	if err != nil {
		return fmt.Errorf("reading the account's device: %w", err)
	}
	parsed, err := types.ParseJID(jid)
	if err != nil {
		return fmt.Errorf("reading the account's device: %w", err)
	}
	device, err := w.container.GetDevice(ctx, parsed)
	if err != nil {
		return fmt.Errorf("loading the account's device: %w", err)
	}
	if device == nil {
		return w.sink.Report(ctx, ref, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout})
	}
	a, err := w.client(ref, device)
	if err != nil {
		return err
	}
	if a.client.IsConnected() {
		return w.sink.Report(ctx, ref, whatsapp.Report{Kind: whatsapp.ReportConnected})
	}
	return a.client.Connect()
}

// Disconnect closes the account's connection; its device stays in the store.
func (w *Whatsmeow) Disconnect(ctx context.Context, ref whatsapp.AccountRef) error {
	w.forget(ref.ID)
	return nil
}

// Logout unlinks the device (telling WhatsApp when connected) and deletes it from whatsmeow's
// store, so nothing of its session stays behind.
func (w *Whatsmeow) Logout(ctx context.Context, ref whatsapp.AccountRef) error {
	w.mu.Lock()
	a := w.clients[ref.ID]
	w.mu.Unlock()
	if a != nil && a.client.IsConnected() {
		if err := a.client.Logout(ctx); err != nil {
			w.logger.Warn("whatsmeow: logout refused; deleting the device locally", "account", ref.ID, "err", err)
		}
	}
	w.forget(ref.ID)
	var jid string
	if err := w.pool.QueryRow(ctx, `DELETE FROM whatsapp_devices WHERE account_id = $1 RETURNING jid`, ref.ID).Scan(&jid); err == nil {
		if parsed, perr := types.ParseJID(jid); perr == nil {
			if device, gerr := w.container.GetDevice(ctx, parsed); gerr == nil && device != nil {
				if err := w.container.DeleteDevice(ctx, device); err != nil {
					return fmt.Errorf("deleting the device from whatsmeow's store: %w", err)
				}
			}
		}
	}
	return nil
}

// handle turns a whatsmeow event into a report; false (not acknowledged) when it could not be
// recorded.
func (w *Whatsmeow) handle(a *meowAccount, evt any) bool {
	if ps, ok := evt.(*events.PairSuccess); ok {
		if _, err := w.pool.Exec(w.ctx, `INSERT INTO whatsapp_devices (account_id, workspace_id, jid) VALUES ($1, $2, $3)
			ON CONFLICT (account_id) DO UPDATE SET jid = EXCLUDED.jid, linked_at = now()`, a.ref.ID, a.ref.WorkspaceID, ps.ID.String()); err != nil {
			w.logger.Error("whatsmeow: keeping the paired device", "account", a.ref.ID, "err", err)
			return false
		}
	}
	switch e := evt.(type) {
	case *events.Message:
		m, ok := TranslateMessage(e)
		if !ok || w.sink.Message == nil {
			return true
		}
		if d, mime, name := downloadableOf(e.Message); d != nil && w.opts.Media != nil {
			stored, err := w.download(a, d, mime, name)
			if err != nil {
				// Kept without its file: the message counts more than a picture that may be gone.
				w.logger.Warn("whatsmeow: downloading inbound media", "account", a.ref.ID, "err", err)
			}
			m.Media = stored
		}
		if err := w.sink.Message(w.ctx, a.ref, m); err != nil {
			w.logger.Error("whatsmeow: storing an inbound message", "account", a.ref.ID, "err", err)
			return false // not acknowledged: WhatsApp delivers it again
		}
		return true
	case *events.Receipt:
		r, ok := TranslateReceipt(e)
		if !ok || w.sink.Receipt == nil {
			return true
		}
		if err := w.sink.Receipt(w.ctx, a.ref, r); err != nil {
			w.logger.Error("whatsmeow: recording a receipt", "account", a.ref.ID, "err", err)
			return false
		}
		return true
	}
	r, ok := Translate(evt, time.Now())
	if !ok {
		return true
	}
	if err := w.sink.Report(w.ctx, a.ref, r); err != nil {
		w.logger.Error("whatsmeow: recording an event", "account", a.ref.ID, "kind", r.Kind, "err", err)
		return false
	}
	return true
}

// Close disconnects every client, each reported disconnected (the server shutting down).
func (w *Whatsmeow) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	all := w.clients
	w.clients = map[uuid.UUID]*meowAccount{}
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, a := range all {
		a.cancel()
		connected := a.client.IsConnected()
		a.client.Disconnect()
		if connected {
			if err := w.sink.Report(ctx, a.ref, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonServerShutdown}); err != nil {
				w.logger.Warn("whatsmeow: recording a disconnect at shutdown", "account", a.ref.ID, "err", err)
			}
		}
	}
	w.cancel()
	w.wg.Wait()
	_ = w.db.Close()
}

// slogLogger is whatsmeow's logger on slog.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Warnf(msg string, args ...any)  { s.l.Warn(fmt.Sprintf(msg, args...)) }
func (s slogLogger) Errorf(msg string, args ...any) { s.l.Error(fmt.Sprintf(msg, args...)) }
func (s slogLogger) Infof(msg string, args ...any)  { s.l.Debug(fmt.Sprintf(msg, args...)) }
func (s slogLogger) Debugf(msg string, args ...any) {
	if s.l.Enabled(context.Background(), slog.LevelDebug-4) {
		s.l.Debug(fmt.Sprintf(msg, args...))
	}
}
func (s slogLogger) Sub(module string) waLog.Logger { return slogLogger{s.l.With("module", module)} }

// Send sends a text message with our own message id. WhatsApp's error 463 (reach-out timelock)
// is reported as such, so campaigns can pause.
func (w *Whatsmeow) Send(ctx context.Context, ref whatsapp.AccountRef, m whatsapp.Outgoing) error {
	w.mu.Lock()
	a := w.clients[ref.ID]
	w.mu.Unlock()
	if a == nil || !a.client.IsConnected() {
		return &whatsapp.SendError{Code: "NOT_CONNECTED", Message: "the account is not connected"}
	}
	var media *OutgoingMedia
	if m.MediaID != nil {
		var err error
		if media, err = w.upload(ctx, a, *m.MediaID); err != nil {
			return err
		}
	}
	msg, err := BuildMessage(m.Text, media)
	if err != nil {
		return &whatsapp.SendError{Code: "INVALID_MESSAGE", Message: err.Error()}
	}
	to := types.NewJID(strings.TrimPrefix(m.To, "+"), types.DefaultUserServer)
	_, err = a.client.SendMessage(ctx, to, msg, whatsmeow.SendRequestExtra{ID: types.MessageID(m.MessageID)})
	if err != nil {
		if errors.Is(err, whatsmeow.ErrServerReturnedError) && strings.HasSuffix(err.Error(), fmt.Sprint(ReachOutTimelockCode)) {
			_ = w.sink.Report(ctx, ref, whatsapp.Report{Kind: whatsapp.ReportReachOutTimelock, Until: time.Now().Add(24 * time.Hour)})
			return &whatsapp.SendError{Code: "REACH_OUT_TIMELOCK", Message: err.Error()}
		}
		return &whatsapp.SendError{Code: "SEND_FAILED", Message: err.Error()}
	}
	return nil
}

type uploadKey struct {
	account, media uuid.UUID
}

// uploadAge is how long an upload is sent again before the file is uploaded anew (WhatsApp's
// media links last longer).
const uploadAge = 24 * time.Hour

// upload returns the media file uploaded to WhatsApp's media servers for the account, uploading
// it (encrypted by whatsmeow) the first time.
func (w *Whatsmeow) upload(ctx context.Context, a *meowAccount, id uuid.UUID) (*OutgoingMedia, error) {
	key := uploadKey{a.ref.ID, id}
	w.mu.Lock()
	if m := w.uploads[key]; m != nil && time.Since(m.uploadedAt) < uploadAge {
		w.mu.Unlock()
		return m, nil
	}
	w.mu.Unlock()
	if w.opts.Media == nil {
		return nil, &whatsapp.SendError{Code: "MEDIA_UNAVAILABLE", Message: "no media store configured"}
	}
	f, err := w.opts.Media.Open(id.String())
	if err != nil {
		return nil, &whatsapp.SendError{Code: "MEDIA_UNAVAILABLE", Message: "the media file is gone: " + err.Error()}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxMediaBytes+1))
	_ = f.Close()
	if err != nil || len(data) > maxMediaBytes {
		return nil, &whatsapp.SendError{Code: "MEDIA_UNAVAILABLE", Message: "the media file cannot be read"}
	}
	mime := mimetype.Detect(data).String()
	if i := strings.IndexByte(mime, ';'); i > 0 && !strings.HasPrefix(mime, "audio/ogg") {
		mime = mime[:i]
	}
	kind := MediaKindOf(mime)
	up, err := a.client.Upload(ctx, data, kind.UploadType())
	if err != nil {
		return nil, &whatsapp.SendError{Code: "SEND_FAILED", Message: "uploading the media file: " + err.Error()}
	}
	m := &OutgoingMedia{Kind: kind, MimeType: mime, Upload: up, uploadedAt: time.Now()}
	w.mu.Lock()
	if w.uploads == nil {
		w.uploads = map[uploadKey]*OutgoingMedia{}
	}
	w.uploads[key] = m
	w.mu.Unlock()
	return m, nil
}

// maxMediaBytes is the largest file WhatsApp sends (a document).
const maxMediaBytes = 100 << 20

// OnWhatsApp asks WhatsApp which of the numbers (E.164) have an account.
func (w *Whatsmeow) OnWhatsApp(ctx context.Context, ref whatsapp.AccountRef, phones []string) (map[string]bool, error) {
	a, err := w.connected(ref)
	if err != nil {
		return nil, err
	}
	res, err := a.client.IsOnWhatsApp(ctx, phones)
	if err != nil {
		return nil, &whatsapp.SendError{Code: "SEND_FAILED", Message: "checking numbers: " + err.Error()}
	}
	on := make(map[string]bool, len(phones))
	for _, r := range res {
		if r.IsIn {
			on["+"+strings.TrimPrefix(r.Query, "+")] = true
			if r.JID.User != "" {
				on["+"+r.JID.User] = true
			}
		}
	}
	out := make(map[string]bool, len(phones))
	for _, p := range phones {
		out[p] = on[p]
	}
	return out, nil
}

// connected returns the account's client when it is connected.
func (w *Whatsmeow) connected(ref whatsapp.AccountRef) (*meowAccount, error) {
	w.mu.Lock()
	a := w.clients[ref.ID]
	w.mu.Unlock()
	if a == nil || !a.client.IsConnected() {
		return nil, &whatsapp.SendError{Code: "NOT_CONNECTED", Message: "the account is not connected"}
	}
	return a, nil
}

// JoinedGroups asks WhatsApp for the number's groups.
func (w *Whatsmeow) JoinedGroups(ctx context.Context, ref whatsapp.AccountRef) ([]whatsapp.Group, error) {
	a, err := w.connected(ref)
	if err != nil {
		return nil, err
	}
	infos, err := a.client.GetJoinedGroups(ctx)
	if err != nil {
		return nil, err
	}
	return groupsOf(infos, a.device.GetJID(), a.device.GetLID()), nil
}

// groupsOf translates whatsmeow's group infos; we are admin when one of our JIDs is.
func groupsOf(infos []*types.GroupInfo, me, meLID types.JID) []whatsapp.Group {
	out := make([]whatsapp.Group, 0, len(infos))
	for _, g := range infos {
		if g == nil {
			continue
		}
		admin := false
		for _, p := range g.Participants {
			u := p.JID.ToNonAD()
			if (u == me.ToNonAD() && !me.IsEmpty()) || (u == meLID.ToNonAD() && !meLID.IsEmpty()) {
				admin = p.IsAdmin || p.IsSuperAdmin
			}
		}
		out = append(out, whatsapp.Group{JID: g.JID.String(), Name: g.Name, Topic: g.Topic, ParticipantCount: len(g.Participants), IsAdmin: admin})
	}
	return out
}

// AddressBook reads the contacts whatsmeow's store learnt from the phone (app state sync).
func (w *Whatsmeow) AddressBook(ctx context.Context, ref whatsapp.AccountRef) ([]whatsapp.AddressBookContact, error) {
	a, err := w.connected(ref)
	if err != nil {
		return nil, err
	}
	all, err := a.device.Contacts.GetAllContacts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]whatsapp.AddressBookContact, 0, len(all))
	for jid, c := range all {
		if jid.Server != types.DefaultUserServer {
			continue // LIDs without a number
		}
		name := c.FullName
		if name == "" {
			name = c.FirstName
		}
		if name == "" {
			name = c.PushName
		}
		out = append(out, whatsapp.AddressBookContact{Phone: "+" + jid.User, Name: name})
	}
	return out, nil
}

// download fetches a message's media and keeps it in the media store under a new id.
func (w *Whatsmeow) download(a *meowAccount, d whatsmeow.DownloadableMessage, mime, name string) (*whatsapp.StoredMedia, error) {
	ctx, cancel := context.WithTimeout(a.ctx, 2*time.Minute)
	defer cancel()
	data, err := a.client.Download(ctx, d)
	if err != nil {
		return nil, err
	}
	id := uuid.New()
	size, sum, err := w.opts.Media.Put(ctx, id.String(), bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return &whatsapp.StoredMedia{ID: id, MimeType: mime, FileName: name, Size: size, SHA256: sum}, nil
}
