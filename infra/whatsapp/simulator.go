package whatsapp

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
)

// SimulatorOpts are the simulator's knobs (README, "The WhatsApp simulator"). The zero value
// means the defaults.
type SimulatorOpts struct {
	// PairDelay is how long after the code is shown the phone "scans" it (default 1s).
	PairDelay time.Duration
	// ConnectDelay is how long a connection takes to come up (default 50ms).
	ConnectDelay time.Duration
	// DeliverDelay and ReadDelay are how long after WhatsApp accepted a message the recipient's
	// phone confirms delivery, and the recipient reads it (defaults 200ms and 1s; negative: never).
	DeliverDelay, ReadDelay time.Duration
	// SendDelay is how long WhatsApp takes to accept a message (its round trip; default 0).
	SendDelay time.Duration
	// FailureRate is the share of sends WhatsApp refuses with a server error (0 to 1).
	FailureRate float64
	// NotOnWhatsApp lists numbers (E.164) or prefixes of numbers that have no WhatsApp.
	NotOnWhatsApp []string
	// Refuse lists numbers or prefixes whose messages WhatsApp refuses for good
	// (RECIPIENT_REFUSED: not retried), though they have WhatsApp.
	Refuse []string
	// Unread is the share of delivered messages their recipients never read (0 to 1), the same
	// messages on every run.
	Unread float64
	// BanAfter bans a number for BanFor (default 24h) once it has sent that many messages since
	// it connected (0: never), as WhatsApp bans numbers that send too much too fast.
	BanAfter int
	BanFor   time.Duration
	// TimelockAfter puts a number under a reach-out timelock for a day once it has sent that
	// many messages since it connected (0: never).
	TimelockAfter int
	// Groups and Contacts are how many groups each number belongs to and how many contacts its
	// phone's address book holds, for syncs (defaults 3 and 10; negative: none).
	Groups, Contacts int
	// Seed makes every random choice repeatable (0: a random seed).
	Seed   uint64
	Logger *slog.Logger
}

// Simulator plays WhatsApp's servers and the phones of the workspace's numbers, for tests, demos
// and benchmarks. What WhatsApp's servers would remember (linked devices, accepted messages) is
// kept in its own tables, which survive our crashes; what a connection is (up or down) lives in
// this process, as a real connection would.
type Simulator struct {
	pool   *pgxpool.Pool
	opts   SimulatorOpts
	sink   Sink
	logger *slog.Logger

	mu        sync.Mutex
	rng       *rand.Rand
	connected map[uuid.UUID]whatsapp.AccountRef
	pairings  map[uuid.UUID]context.CancelFunc
	bans      map[uuid.UUID]time.Time
	timelocks map[uuid.UUID]time.Time
	sends     map[uuid.UUID]int // accepted since the account connected
	// wrote are the numbers that wrote to each account: a timelock does not stop replies to them.
	wrote map[uuid.UUID]map[string]bool
	// delivered and read are the receipts to send, each queue in due order.
	delivered, read []receipt
	receipting      bool
	receiptWake     chan struct{}
	closed          bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewSimulator returns a simulator on pool that tells report what happens to connections.
func NewSimulator(pool *pgxpool.Pool, opts SimulatorOpts, sink Sink) *Simulator {
	if opts.PairDelay <= 0 {
		opts.PairDelay = time.Second
	}
	if opts.ConnectDelay <= 0 {
		opts.ConnectDelay = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BanFor <= 0 {
		opts.BanFor = 24 * time.Hour
	}
	if opts.Groups == 0 {
		opts.Groups = 3
	}
	if opts.Contacts == 0 {
		opts.Contacts = 10
	}
	if opts.DeliverDelay == 0 {
		opts.DeliverDelay = 200 * time.Millisecond
	}
	if opts.ReadDelay == 0 {
		opts.ReadDelay = time.Second
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Simulator{pool: pool, opts: opts, sink: sink, logger: opts.Logger,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		connected: map[uuid.UUID]whatsapp.AccountRef{}, pairings: map[uuid.UUID]context.CancelFunc{},
		bans: map[uuid.UUID]time.Time{}, timelocks: map[uuid.UUID]time.Time{}, sends: map[uuid.UUID]int{}, wrote: map[uuid.UUID]map[string]bool{},
		ctx: ctx, cancel: cancel, receiptWake: make(chan struct{}, 1)}
}

// ErrClosed is returned by a gateway that was closed.
var ErrClosed = errors.New("whatsapp: the gateway is closed")

// fictionalAreaCodes are North American area codes; with them, the 555-0100 to 555-0199 lines
// are the numbers reserved for fiction: valid numbers that reach nobody.
var fictionalAreaCodes = []int{201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225, 228,
	229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270, 272, 276, 281, 301, 302, 303, 304, 305, 307,
	308, 309, 310, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 323, 325, 330, 331, 334, 336, 337, 339, 347, 351, 352, 360,
	361, 385, 386, 401, 402, 404, 405, 406, 407, 408, 409, 410, 412, 413, 414, 415, 417, 419, 423, 424, 425, 430, 432, 434, 435,
	440, 442, 443}

// maxFictional is how many fictional numbers there are.
var maxFictional = len(fictionalAreaCodes) * 100

// fictionalNumber is the i-th fictional number (i taken modulo their count).
func fictionalNumber(i int) string {
	i %= maxFictional
	return fmt.Sprintf("+1%d55501%02d", fictionalAreaCodes[i/100], i%100)
}

// SimulatedPhone is the number the simulator gives an account paired without a pair phone: a
// fictional North American number derived from the account id, the same on every run.
func SimulatedPhone(account uuid.UUID) string {
	return fictionalNumber(int(simulatedNumber(account, "phone", 0) % uint64(maxFictional)))
}

// Pair shows a QR code (or, with pairPhone, a pair code), and about PairDelay later completes as
// if the phone had scanned it: the device is linked, then connected.
func (s *Simulator) Pair(ctx context.Context, account whatsapp.AccountRef, pairPhone string, updates func(whatsapp.PairingUpdate)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if cancel := s.pairings[account.ID]; cancel != nil {
		cancel()
	}
	pctx, cancel := context.WithCancel(s.ctx)
	s.pairings[account.ID] = cancel
	code := s.code()
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer cancel()
		now := time.Now()
		if pairPhone != "" {
			updates(whatsapp.PairingUpdate{Kind: whatsapp.PairingPairCode, Code: code[:4] + "-" + code[4:8], ExpiresAt: now.Add(160 * time.Second)})
		} else {
			updates(whatsapp.PairingUpdate{Kind: whatsapp.PairingQRCode, Code: "2@" + code + "," + account.ID.String(), ExpiresAt: now.Add(60 * time.Second)})
		}
		select {
		case <-pctx.Done():
			return
		case <-time.After(s.opts.PairDelay):
		}
		phone := pairPhone
		if phone == "" {
			phone = SimulatedPhone(account.ID)
		}
		if _, err := s.pool.Exec(pctx, `INSERT INTO simulator_devices (account_id, workspace_id, phone) VALUES ($1, $2, $3)
			ON CONFLICT (account_id) DO UPDATE SET phone = EXCLUDED.phone, linked_at = now()`, account.ID, account.WorkspaceID, phone); err != nil {
			if pctx.Err() == nil {
				updates(whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "INTERNAL"})
				s.tell(account, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonPairingError})
			}
			return
		}
		digits := strings.TrimPrefix(phone, "+")
		if err := s.tell(account, whatsapp.Report{Kind: whatsapp.ReportPaired, JID: digits + "@s.whatsapp.net",
			LID: lidOf(account.ID) + "@lid", Phone: phone, Platform: "simulator"}); err != nil {
			return
		}
		updates(whatsapp.PairingUpdate{Kind: whatsapp.PairingSuccess})
		s.up(account)
	}()
	return nil
}

func lidOf(id uuid.UUID) string {
	sum := sha256.Sum256(append([]byte("lid"), id[:]...))
	return fmt.Sprintf("%d", binary.BigEndian.Uint64(sum[:8])%1_000_000_000_000_000)
}

// code is a random pairing code: 8 characters WhatsApp's pair codes use.
func (s *Simulator) code() string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
	b := make([]byte, 8)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// up marks the account connected and says so.
func (s *Simulator) up(account whatsapp.AccountRef) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.connected[account.ID] = account
	s.sends[account.ID] = 0
	s.mu.Unlock()
	_ = s.tell(account, whatsapp.Report{Kind: whatsapp.ReportConnected})
}

// tell reports r, retrying while our side fails (as a real connection redelivers what was not
// acknowledged), until the simulator closes.
func (s *Simulator) tell(account whatsapp.AccountRef, r whatsapp.Report) error {
	for attempt := 0; ; attempt++ {
		err := s.sink.Report(s.ctx, account, r)
		if err == nil || s.ctx.Err() != nil {
			return err
		}
		s.logger.Warn("simulator: recording a report failed; retrying", "account", account.ID, "kind", r.Kind, "err", err)
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(min(time.Duration(1<<min(attempt, 6))*50*time.Millisecond, 5*time.Second)):
		}
	}
}

// Connect brings a linked account's connection up, about ConnectDelay later. An account the
// simulated WhatsApp has no device for is reported logged out; a banned one, banned.
func (s *Simulator) Connect(ctx context.Context, account whatsapp.AccountRef) error {
	var linked bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM simulator_devices WHERE account_id = $1)`, account.ID).Scan(&linked); err != nil {
		return fmt.Errorf("simulator: reading the device: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	until, banned := s.bans[account.ID]
	if banned && !time.Now().Before(until) {
		delete(s.bans, account.ID)
		banned = false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.opts.ConnectDelay):
		}
		switch {
		case !linked:
			_ = s.tell(account, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout, Code: 401})
		case banned:
			_ = s.tell(account, whatsapp.Report{Kind: whatsapp.ReportTemporaryBan, Code: 101, Until: until})
		default:
			s.up(account)
		}
	}()
	return nil
}

// Disconnect takes the account's connection down; the caller records it.
func (s *Simulator) Disconnect(ctx context.Context, account whatsapp.AccountRef) error {
	s.mu.Lock()
	delete(s.connected, account.ID)
	if cancel := s.pairings[account.ID]; cancel != nil {
		cancel()
		delete(s.pairings, account.ID)
	}
	s.mu.Unlock()
	return nil
}

// Logout unlinks the device: the simulated WhatsApp forgets it.
func (s *Simulator) Logout(ctx context.Context, account whatsapp.AccountRef) error {
	if err := s.Disconnect(ctx, account); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM simulator_devices WHERE account_id = $1`, account.ID); err != nil {
		return fmt.Errorf("simulator: unlinking the device: %w", err)
	}
	return nil
}

// Connected reports whether the account's simulated connection is up.
func (s *Simulator) Connected(account uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.connected[account]
	return ok
}

// Close takes every connection down (each reported disconnected, the server shutting down) and
// waits for the simulator's work to end.
func (s *Simulator) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	up := make([]whatsapp.AccountRef, 0, len(s.connected))
	for _, a := range s.connected {
		up = append(up, a)
	}
	s.connected = map[uuid.UUID]whatsapp.AccountRef{}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, a := range up {
		if err := s.sink.Report(ctx, a, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonServerShutdown}); err != nil {
			s.logger.Warn("simulator: recording a disconnect at shutdown", "account", a.ID, "err", err)
		}
	}
	s.cancel()
	s.wg.Wait()
}

// The simulated world's events, for tests and demos (simulateAccountEvent).

// Drop breaks the account's connection as the network would.
func (s *Simulator) Drop(account whatsapp.AccountRef, reason string) error {
	s.mu.Lock()
	delete(s.connected, account.ID)
	s.mu.Unlock()
	return s.tell(account, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: reason})
}

// Ban bans the number until until (code 101, as WhatsApp's temporary bans); the connection drops.
func (s *Simulator) Ban(account whatsapp.AccountRef, until time.Time) error {
	s.mu.Lock()
	delete(s.connected, account.ID)
	s.bans[account.ID] = until
	s.mu.Unlock()
	return s.tell(account, whatsapp.Report{Kind: whatsapp.ReportTemporaryBan, Code: 101, Until: until})
}

// Timelock puts the number under a reach-out timelock until until (zero lifts it).
func (s *Simulator) Timelock(account whatsapp.AccountRef, until time.Time) error {
	s.mu.Lock()
	s.timelocks[account.ID] = until
	s.mu.Unlock()
	return s.tell(account, whatsapp.Report{Kind: whatsapp.ReportReachOutTimelock, Until: until})
}

// UnlinkFromPhone logs the device out as if from the phone's "Linked devices" screen.
func (s *Simulator) UnlinkFromPhone(ctx context.Context, account whatsapp.AccountRef) error {
	if err := s.Logout(ctx, account); err != nil {
		return err
	}
	return s.tell(account, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout, Code: 401})
}

// Send accepts a message as WhatsApp would: refused when the account is not connected, the
// number has no WhatsApp, a timelock forbids starting the conversation, or (at FailureRate) a
// server error; otherwise recorded once per message id (a repeated id is dropped, as WhatsApp
// drops it) and followed by the recipient's receipts.
func (s *Simulator) Send(ctx context.Context, account whatsapp.AccountRef, m whatsapp.Outgoing) error {
	if s.opts.SendDelay > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.opts.SendDelay):
		}
	}
	s.mu.Lock()
	_, connected := s.connected[account.ID]
	locked := time.Now().Before(s.timelocks[account.ID]) && !s.wrote[account.ID][m.To]
	fail := s.opts.FailureRate > 0 && s.rng.Float64() < s.opts.FailureRate
	s.mu.Unlock()
	switch {
	case !connected:
		return &whatsapp.SendError{Code: "NOT_CONNECTED", Message: "the account is not connected"}
	case s.notOnWhatsApp(m.To):
		return &whatsapp.SendError{Code: "NOT_ON_WHATSAPP", Message: m.To + " has no WhatsApp"}
	case hasPrefix(m.To, s.opts.Refuse):
		return &whatsapp.SendError{Code: "RECIPIENT_REFUSED", Message: "server returned error 403"}
	case locked:
		return &whatsapp.SendError{Code: "REACH_OUT_TIMELOCK", Message: "server returned error 463"}
	case fail:
		return &whatsapp.SendError{Code: "SERVER_ERROR", Message: "server returned error 500"}
	}
	var media *string
	if m.MediaID != nil {
		id := m.MediaID.String()
		media = &id
	}
	// WhatsApp's record must survive our process, not the database server: it is written
	// without waiting for the disk (synchronous_commit off, in one round trip), as a remote
	// service's write costs us nothing.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit TO off")
	insert := b.Queue(`INSERT INTO simulator_messages (account_id, message_id, recipient, body, media_id) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account_id, message_id) DO NOTHING`, account.ID, m.MessageID, m.To, m.Text, media)
	b.Queue("COMMIT")
	var tag pgconn.CommandTag
	insert.Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("simulator: accepting the message: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil // seen before: accepted, and dropped
	}
	s.receipts(account, m.MessageID)
	s.mu.Lock()
	s.sends[account.ID]++
	n := s.sends[account.ID]
	s.mu.Unlock()
	switch {
	case s.opts.BanAfter > 0 && n >= s.opts.BanAfter:
		s.spawn(func() { _ = s.Ban(account, time.Now().Add(s.opts.BanFor)) })
	case s.opts.TimelockAfter > 0 && n == s.opts.TimelockAfter:
		s.spawn(func() { _ = s.Timelock(account, time.Now().Add(24*time.Hour)) })
	}
	return nil
}

// OnWhatsApp tells which of the numbers have WhatsApp (all but those configured otherwise), as
// WhatsApp answers a connected device.
func (s *Simulator) OnWhatsApp(ctx context.Context, account whatsapp.AccountRef, phones []string) (map[string]bool, error) {
	s.mu.Lock()
	_, connected := s.connected[account.ID]
	s.mu.Unlock()
	if !connected {
		return nil, &whatsapp.SendError{Code: "NOT_CONNECTED", Message: "the account is not connected"}
	}
	out := make(map[string]bool, len(phones))
	for _, p := range phones {
		out[p] = !s.notOnWhatsApp(p)
	}
	return out, nil
}

func (s *Simulator) notOnWhatsApp(phone string) bool { return hasPrefix(phone, s.opts.NotOnWhatsApp) }

func hasPrefix(phone string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(phone, p) {
			return true
		}
	}
	return false
}

// unread reports whether the recipient of message id never reads it (Unread of the messages,
// chosen by the id's hash).
func (s *Simulator) unread(id string) bool {
	if s.opts.Unread <= 0 {
		return false
	}
	h := sha256.Sum256([]byte(id))
	return float64(binary.BigEndian.Uint64(h[:8]))/float64(^uint64(0)) < s.opts.Unread
}

// receipt is a receipt the simulated phone of a recipient will send at due.
type receipt struct {
	account whatsapp.AccountRef
	id      string
	kind    whatsapp.ReceiptKind
	due     time.Time
}

// receipts schedules the delivery and read receipts of an accepted message after their delays.
// They are sent in batches (all that are due, per account and kind, in one receipt), as
// WhatsApp's servers send the receipts of many messages at once.
func (s *Simulator) receipts(account whatsapp.AccountRef, id string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.opts.DeliverDelay >= 0 {
		s.delivered = append(s.delivered, receipt{account: account, id: id, kind: whatsapp.ReceiptDelivered, due: now.Add(s.opts.DeliverDelay)})
		if s.opts.ReadDelay >= 0 && !s.unread(id) {
			s.read = append(s.read, receipt{account: account, id: id, kind: whatsapp.ReceiptRead, due: now.Add(s.opts.ReadDelay)})
		}
	}
	if !s.receipting {
		s.receipting = true
		s.wg.Add(1)
		go s.sendReceipts()
	}
	select {
	case s.receiptWake <- struct{}{}:
	default:
	}
}

// sendReceipts sends the receipts as they fall due until the simulator closes. Each queue is in
// due order: every message of a kind waits the same delay.
func (s *Simulator) sendReceipts() {
	defer s.wg.Done()
	for {
		now := time.Now()
		s.mu.Lock()
		var due []receipt
		next := time.Time{}
		for _, q := range []*[]receipt{&s.delivered, &s.read} {
			i := 0
			for i < len(*q) && !(*q)[i].due.After(now) {
				i++
			}
			due = append(due, (*q)[:i]...)
			*q = append((*q)[:0:0], (*q)[i:]...)
			if len(*q) > 0 && (next.IsZero() || (*q)[0].due.Before(next)) {
				next = (*q)[0].due
			}
		}
		s.mu.Unlock()
		type batchKey struct {
			account whatsapp.AccountRef
			kind    whatsapp.ReceiptKind
		}
		batches := map[batchKey][]string{}
		var order []batchKey
		for _, r := range due {
			k := batchKey{r.account, r.kind}
			if _, ok := batches[k]; !ok {
				order = append(order, k)
			}
			batches[k] = append(batches[k], r.id)
		}
		for _, k := range order {
			ids := batches[k]
			for len(ids) > 0 {
				chunk := ids[:min(len(ids), 500)]
				ids = ids[len(chunk):]
				r := whatsapp.Receipt{Kind: k.kind, MessageIDs: chunk, At: now}
				s.retry(func(ctx context.Context) error {
					if s.sink.Receipt == nil {
						return nil
					}
					return s.sink.Receipt(ctx, k.account, r)
				})
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.receiptWake:
		case <-time.After(wait):
		}
	}
}

// retry calls f until it succeeds or the simulator closes, as WhatsApp redelivers what was not
// acknowledged.
func (s *Simulator) retry(f func(ctx context.Context) error) {
	for attempt := 0; ; attempt++ {
		err := f(s.ctx)
		if err == nil || s.ctx.Err() != nil {
			return
		}
		s.logger.Warn("simulator: our side refused a delivery; retrying", "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(min(time.Duration(1<<min(attempt, 6))*50*time.Millisecond, 5*time.Second)):
		}
	}
}

// SimulateInbound delivers a text message from the number from to the account, as if sent from
// a phone, and returns its message id once our side stored it.
func (s *Simulator) SimulateInbound(ctx context.Context, account whatsapp.AccountRef, from, text string) (string, error) {
	s.mu.Lock()
	_, connected := s.connected[account.ID]
	id := "SIM" + s.code() + s.code()
	s.mu.Unlock()
	if !connected {
		return "", &whatsapp.SendError{Code: "NOT_CONNECTED", Message: "the account is not connected"}
	}
	m := whatsapp.InboundMessage{MessageID: id, From: from, FromJID: strings.TrimPrefix(from, "+") + "@s.whatsapp.net",
		Text: text, SentAt: time.Now()}
	if err := s.sink.Message(ctx, account, m); err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.wrote[account.ID] == nil {
		s.wrote[account.ID] = map[string]bool{}
	}
	s.wrote[account.ID][from] = true
	s.mu.Unlock()
	return id, nil
}

// SimulatorMessage is a message the simulated WhatsApp accepted.
type SimulatorMessage struct {
	MessageID, To, Text string
	MediaID             *string
	AcceptedAt          time.Time
	Seq                 int64
}

// Messages lists what the simulated WhatsApp accepted from the account, oldest first, after seq.
func (s *Simulator) Messages(ctx context.Context, account uuid.UUID, afterSeq int64, first int) ([]SimulatorMessage, bool, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM simulator_messages WHERE account_id = $1`, account).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("simulator: counting messages: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT message_id, recipient, body, media_id, accepted_at, seq FROM simulator_messages
		WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, account, afterSeq, first+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("simulator: listing messages: %w", err)
	}
	defer rows.Close()
	var out []SimulatorMessage
	for rows.Next() {
		var m SimulatorMessage
		if err := rows.Scan(&m.MessageID, &m.To, &m.Text, &m.MediaID, &m.AcceptedAt, &m.Seq); err != nil {
			return nil, false, 0, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, 0, err
	}
	if len(out) > first {
		return out[:first], true, total, nil
	}
	return out, false, total, nil
}

// simulatedNumber is a fictitious number derived from the account and i: the same on every run.
func simulatedNumber(account uuid.UUID, salt string, i int) uint64 {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%d", account, salt, i)))
	return binary.BigEndian.Uint64(sum[:8])
}

// JoinedGroups lists the number's groups: Groups of them, the same for an account on every call.
func (s *Simulator) JoinedGroups(ctx context.Context, account whatsapp.AccountRef) ([]whatsapp.Group, error) {
	if !s.Connected(account.ID) {
		return nil, &whatsapp.SendError{Code: "NOT_CONNECTED", Message: "the account is not connected"}
	}
	out := make([]whatsapp.Group, 0, max(s.opts.Groups, 0))
	for i := range max(s.opts.Groups, 0) {
		n := simulatedNumber(account.ID, "group", i)
		out = append(out, whatsapp.Group{JID: fmt.Sprintf("120363%012d@g.us", n%1_000_000_000_000), Name: fmt.Sprintf("Simulated group %d", i+1),
			Topic: "A group of the simulated WhatsApp", ParticipantCount: 2 + int(n%254), IsAdmin: i%5 == 0})
	}
	return out, nil
}

// AddressBook lists the phone's contacts: Contacts fictional numbers (at most 10,000 distinct),
// the same for an account on every call.
func (s *Simulator) AddressBook(ctx context.Context, account whatsapp.AccountRef) ([]whatsapp.AddressBookContact, error) {
	if !s.Connected(account.ID) {
		return nil, &whatsapp.SendError{Code: "NOT_CONNECTED", Message: "the account is not connected"}
	}
	n := min(max(s.opts.Contacts, 0), maxFictional)
	start := int(simulatedNumber(account.ID, "book", 0) % uint64(maxFictional))
	out := make([]whatsapp.AddressBookContact, 0, n)
	for i := range n {
		out = append(out, whatsapp.AddressBookContact{Phone: fictionalNumber(start + i), Name: fmt.Sprintf("Book contact %d", i+1)})
	}
	return out, nil
}

// spawn runs f in the background, waited for by Close.
func (s *Simulator) spawn(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		f()
	}()
}
