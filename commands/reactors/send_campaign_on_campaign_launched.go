package reactors

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SendCampaignOnCampaignLaunched is the campaign dispatcher. It starts campaigns when they are
// due (freezing their audience), and sends their messages from each WhatsApp account at the
// account's pace: a token bucket from messagesPerMinute with jitter, the daily cap, quiet hours in
// the workspace's time zone, the campaigns sharing an account served in turn. Each message is
// recorded as an intent (QUEUED, with the id derived from campaign and recipient) before it is
// handed to WhatsApp, and its outcome after; an intent found without an outcome (a process that
// stopped in between) is sent again with the same id, which WhatsApp keeps once. It pauses a
// campaign by itself when its account cannot send (disconnected, logged out, banned, under a
// reach-out timelock) or too many of its sends fail, and ends recipients not reached by a
// campaign's expiry or cancellation.
//
// What it has done is kept in its book, from the log, in the transaction that moves its
// checkpoint (and moved forward by the dispatcher as it records), so a crash loses nothing and
// repeats no send. A campaign is dispatched under a lock, by one process at a time.
type SendCampaignOnCampaignLaunched struct {
	Campaigns CampaignCommands
	Gateway   CampaignGateway
	Book      DispatchBook
	Directory CampaignDirectory
	Locks     Locks
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tick is the time between two looks at the book when nothing wakes the dispatcher (default
	// 250ms): pause, resume and cancel take effect within it.
	Tick time.Duration
	// BatchSize is the most messages sent for one account in one step (default 200).
	BatchSize int
	// Unlimited ignores the accounts' rates and daily caps (benchmarks with the simulator).
	Unlimited bool
	// RetryBase scales the backoff between tries of a message that failed for a reason that may
	// pass (default 1: campaign.RetryDelay as it is; tests make it small).
	RetryBase float64
	// Concurrency is how many sends are in flight at once (default 16).
	Concurrency   int
	Notifications func() (<-chan struct{}, func())
	Logger        *slog.Logger

	wakeOnce sync.Once
	wake     chan struct{}
	mu       sync.Mutex
	buckets  map[uuid.UUID]*bucket
	failures map[uuid.UUID][]bool
	turn     int
}

// CampaignCommands are the commands the dispatcher records its work with.
type CampaignCommands interface {
	StartCampaign(ctx context.Context, id uuid.UUID) error
	QueueCampaignMessages(ctx context.Context, b commands.CampaignBatch) ([]commands.CampaignMessage, error)
	RecordCampaignOutcomes(ctx context.Context, ws uuid.UUID, outcomes []commands.CampaignOutcome) error
	AutoPauseCampaign(ctx context.Context, id uuid.UUID, reason, detail string) error
	CompleteCampaign(ctx context.Context, id uuid.UUID) error
	EndCampaignRecipients(ctx context.Context, ws, id uuid.UUID, reason string, contacts []uuid.UUID) error
}

// CampaignGateway sends messages to WhatsApp.
type CampaignGateway interface {
	Send(ctx context.Context, account whatsapp.AccountRef, m whatsapp.Outgoing) error
}

// NumberChecker is what a gateway may offer: which numbers have WhatsApp, asked before sending.
type NumberChecker interface {
	OnWhatsApp(ctx context.Context, account whatsapp.AccountRef, phones []string) (map[string]bool, error)
}

// CampaignDirectory reads what the dispatcher needs of the read models: recipients' contact
// data, the workspace's pace and the account's state, and a message's recorded text.
type CampaignDirectory interface {
	Recipients(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]RecipientData, error)
	Pace(ctx context.Context, ws, account uuid.UUID) (campaign.Pace, error)
	AccountState(ctx context.Context, account uuid.UUID) (AccountState, error)
	SentText(ctx context.Context, account uuid.UUID, messageID string) (string, bool, error)
}

// RecipientData is a recipient's contact as the template is rendered with.
type RecipientData struct {
	campaign.Recipient
	OptedOut bool
}

// AccountState is whether an account can send: its status, why, since when.
type AccountState struct {
	Status          whatsapp.Status
	Reason          string
	Since           time.Time
	TimelockedUntil *time.Time
}

// DispatchBook is the dispatcher's record of campaigns and recipients.
type DispatchBook interface {
	// Apply keeps the book from the log, in the consumer's transaction.
	Apply(ctx context.Context, tx pgx.Tx, changes []BookChange) error
	// Campaigns lists the campaigns that are not done: scheduled, running, paused, or ended
	// with recipients left to close.
	Campaigns(ctx context.Context) ([]BookCampaign, error)
	// Pending returns up to limit recipients of a campaign nothing was done for, in order.
	Pending(ctx context.Context, campaignID uuid.UUID, limit int) ([]BookRecipient, error)
	// Unsent returns up to limit recipients of a campaign whose intent has no outcome and whose
	// next try is due at now.
	Unsent(ctx context.Context, campaignID uuid.UUID, now time.Time, limit int) ([]BookRecipient, error)
	// Left returns the recipients of a campaign without outcome (pending or intended).
	Left(ctx context.Context, campaignID uuid.UUID) ([]uuid.UUID, error)
	Remaining(ctx context.Context, campaignID uuid.UUID) (int, error)
	Intended(ctx context.Context, campaignID uuid.UUID, contacts []uuid.UUID, at time.Time) error
	Done(ctx context.Context, campaignID uuid.UUID, contacts []uuid.UUID) error
	Retry(ctx context.Context, campaignID, contactID uuid.UUID, attempts int, next time.Time) error
	// SentSince counts the messages an account queued since t.
	SentSince(ctx context.Context, account uuid.UUID, t time.Time) (int, error)
}

// BookChange is one event as the book takes it.
type BookChange struct {
	Event any
	// At is when the event was recorded.
	At time.Time
}

// BookCampaign is a campaign in the book.
type BookCampaign struct {
	ID, WorkspaceID, AccountID uuid.UUID
	Status                     campaign.Status
	Started                    bool
	StartsAt, ExpiresAt        *time.Time
	Body                       string
	MediaID                    *uuid.UUID
}

// BookRecipient is a recipient in the book.
type BookRecipient struct {
	ContactID uuid.UUID
	MessageID string
	Attempts  int
}

// DispatcherName names the dispatcher's consumer.
const DispatcherName = "send_campaign_on_campaign_launched"

// Spec is the dispatcher's consumer of the log.
func (r *SendCampaignOnCampaignLaunched) Spec() eventstore.ConsumerSpec {
	return eventstore.ConsumerSpec{Name: DispatcherName,
		Types: []string{campaign.EventCampaignCreated, campaign.EventCampaignLaunched, campaign.EventRecipientsAdded, campaign.EventCampaignStarted,
			campaign.EventRecipientsSkipped, campaign.EventRecipientsEnded, campaign.EventCampaignPaused, campaign.EventCampaignResumed,
			campaign.EventCampaignCancelled, campaign.EventCampaignCompleted,
			contact.EventMessageQueued, contact.EventMessageSent, contact.EventMessageFailed},
		Apply: r.apply}
}

func (r *SendCampaignOnCampaignLaunched) apply(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
	changes := make([]BookChange, 0, len(b.Events))
	for _, e := range b.Events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		if q, ok := ev.(contact.MessageQueued); ok && q.CampaignID == nil {
			continue
		}
		changes = append(changes, BookChange{Event: ev, At: e.RecordedAt})
	}
	return r.Book.Apply(ctx, tx, changes)
}

func (r *SendCampaignOnCampaignLaunched) wakeChan() chan struct{} {
	r.wakeOnce.Do(func() { r.wake = make(chan struct{}, 1) })
	return r.wake
}

// Wake makes the dispatcher look at its book now.
func (r *SendCampaignOnCampaignLaunched) Wake() {
	select {
	case r.wakeChan() <- struct{}{}:
	default:
	}
}

func (r *SendCampaignOnCampaignLaunched) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run keeps the book with consumer and dispatches until ctx ends. It dispatches only once the
// book has caught up with the log, so that nothing recorded before a crash is done again.
func (r *SendCampaignOnCampaignLaunched) Run(ctx context.Context, consumer *eventstore.Consumer) error {
	if _, err := consumer.Init(ctx); err != nil {
		return err
	}
	var notified <-chan struct{}
	if r.Notifications != nil {
		ch, unsubscribe := r.Notifications()
		defer unsubscribe()
		notified = ch
	}
	caught := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = consumer.Run(ctx, eventstore.RunOpts{Wake: notified, Logger: r.Logger,
			OnStep: func(res eventstore.StepResult) {
				if res.Events > 0 {
					r.Wake()
				}
				if res.CaughtUp {
					once.Do(func() { close(caught) })
				}
			}})
	}()
	defer wg.Wait()
	select {
	case <-caught:
	case <-ctx.Done():
		return nil
	}
	tick := r.Tick
	if tick <= 0 {
		tick = 250 * time.Millisecond
	}
	for {
		busy, err := r.Step(ctx)
		if err != nil && ctx.Err() == nil {
			r.Logger.Error("dispatching campaigns", "err", err)
		}
		if busy && err == nil {
			select {
			case <-ctx.Done():
				return nil
			default:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wakeChan():
		case <-time.After(tick):
		}
	}
}

// CampaignLockKey is the lock a campaign is dispatched under.
func CampaignLockKey(id uuid.UUID) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("campaign"))
	_, _ = h.Write(id[:])
	return int64(h.Sum64())
}

// Step does one round of the dispatcher's work and reports whether it sent anything (and so
// may have more to send at once).
func (r *SendCampaignOnCampaignLaunched) Step(ctx context.Context) (bool, error) {
	camps, err := r.Book.Campaigns(ctx)
	if err != nil {
		return false, err
	}
	now := r.now()
	byAccount := map[uuid.UUID][]BookCampaign{}
	var errs []error
	for _, c := range camps {
		switch {
		case c.Status == campaign.StatusCancelled:
			errs = append(errs, r.locked(ctx, c.ID, func() error { return r.close(ctx, c, campaign.EndCancelled) }))
		case c.Status == campaign.StatusScheduled && !c.Started:
			if c.StartsAt == nil || !c.StartsAt.After(now) {
				errs = append(errs, r.locked(ctx, c.ID, func() error { return r.Campaigns.StartCampaign(ctx, c.ID) }))
			}
		case c.Status == campaign.StatusRunning || (c.Status == campaign.StatusPaused && c.Started):
			if c.ExpiresAt != nil && !c.ExpiresAt.After(now) {
				errs = append(errs, r.locked(ctx, c.ID, func() error { return r.close(ctx, c, campaign.EndExpired) }))
				continue
			}
			if c.Status == campaign.StatusRunning {
				byAccount[c.AccountID] = append(byAccount[c.AccountID], c)
			}
		case c.Status == campaign.StatusCompleted:
			// The book drops a completed campaign's rows; nothing to do.
		}
	}
	busy := false
	for account, cs := range byAccount {
		sent, err := r.dispatchAccount(ctx, account, cs, now)
		busy = busy || sent > 0
		errs = append(errs, err)
	}
	return busy, errors.Join(errs...)
}

// locked runs f under the campaign's lock; when another process holds it, f is left to it.
func (r *SendCampaignOnCampaignLaunched) locked(ctx context.Context, id uuid.UUID, f func() error) error {
	unlock, ok, err := r.Locks.TryLock(ctx, CampaignLockKey(id))
	if err != nil || !ok {
		return err
	}
	defer unlock()
	return f()
}

// close ends a cancelled or expired campaign's recipients that have no outcome, and completes an
// expired one.
func (r *SendCampaignOnCampaignLaunched) close(ctx context.Context, c BookCampaign, reason string) error {
	left, err := r.Book.Left(ctx, c.ID)
	if err != nil {
		return err
	}
	if err := r.Campaigns.EndCampaignRecipients(ctx, c.WorkspaceID, c.ID, reason, left); err != nil {
		return err
	}
	if err := r.Book.Done(ctx, c.ID, left); err != nil {
		return err
	}
	if reason == campaign.EndExpired {
		return r.Campaigns.CompleteCampaign(ctx, c.ID)
	}
	return nil
}

// bucket is an account's token bucket and its jitter.
type bucket struct {
	limiter   *rate.Limiter
	perMinute int
	notBefore time.Time
}

func (r *SendCampaignOnCampaignLaunched) bucketOf(account uuid.UUID, perMinute int, now time.Time) *bucket {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buckets == nil {
		r.buckets = map[uuid.UUID]*bucket{}
	}
	b := r.buckets[account]
	if b == nil || b.perMinute != perMinute {
		// One second's worth of sends at most at once, and at least one. A new bucket starts
		// with one token, not a full burst.
		burst := max(1, perMinute/60)
		b = &bucket{limiter: rate.NewLimiter(rate.Limit(float64(perMinute)/60), burst), perMinute: perMinute}
		b.limiter.AllowN(now, burst-1)
		r.buckets[account] = b
	}
	return b
}

// dispatchAccount sends for the running campaigns of one account, as much as its pace allows
// now, shared fairly. It returns how many messages it handed to WhatsApp.
func (r *SendCampaignOnCampaignLaunched) dispatchAccount(ctx context.Context, account uuid.UUID, cs []BookCampaign, now time.Time) (int, error) {
	st, err := r.Directory.AccountState(ctx, account)
	if err != nil {
		return 0, err
	}
	reason, wait := campaign.AccountCheck(st.Status, st.Reason, st.Since, st.TimelockedUntil, now)
	if wait {
		return 0, nil
	}
	if reason != "" {
		var errs []error
		for _, c := range cs {
			errs = append(errs, r.Campaigns.AutoPauseCampaign(ctx, c.ID, reason, string(st.Status)))
		}
		return 0, errors.Join(errs...)
	}
	batch := r.BatchSize
	if batch <= 0 {
		batch = 200
	}
	allowance := batch
	var b *bucket
	if !r.Unlimited {
		pace, err := r.Directory.Pace(ctx, cs[0].WorkspaceID, account)
		if err != nil {
			return 0, err
		}
		if quiet, _ := pace.Quiet(now); quiet {
			return 0, nil
		}
		if pace.DailyCap > 0 {
			sent, err := r.Book.SentSince(ctx, account, pace.DayStart(now))
			if err != nil {
				return 0, err
			}
			allowance = min(allowance, pace.DailyCap-sent)
		}
		b = r.bucketOf(account, pace.PerMinute, now)
		if now.Before(b.notBefore) {
			return 0, nil
		}
		allowance = min(allowance, int(b.limiter.TokensAt(now)))
	}
	if allowance <= 0 {
		return 0, nil
	}
	// Due retries first, then new recipients; each campaign wants what it has.
	wants := make([]int, len(cs))
	work := make([][]BookRecipient, len(cs))
	fresh := make([]int, len(cs))
	for i, c := range cs {
		unsent, err := r.Book.Unsent(ctx, c.ID, now, allowance)
		if err != nil {
			return 0, err
		}
		work[i] = unsent
		if len(unsent) < allowance {
			pending, err := r.Book.Pending(ctx, c.ID, allowance-len(unsent))
			if err != nil {
				return 0, err
			}
			work[i] = append(work[i], pending...)
			fresh[i] = len(pending)
		}
		wants[i] = len(work[i])
	}
	r.mu.Lock()
	r.turn++
	turn := r.turn
	r.mu.Unlock()
	shares := campaign.FairShare(allowance, wants, turn)
	total := 0
	var errs []error
	for i, c := range cs {
		if shares[i] == 0 {
			if wants[i] == 0 {
				errs = append(errs, r.maybeComplete(ctx, c))
			}
			continue
		}
		err := r.locked(ctx, c.ID, func() error {
			n, err := r.sendFor(ctx, c, work[i][:shares[i]], len(work[i])-fresh[i], now)
			total += n
			return err
		})
		errs = append(errs, err)
	}
	if b != nil && total > 0 {
		b.limiter.AllowN(now, total)
		if iv := time.Minute / time.Duration(max(b.perMinute, 1)); iv >= time.Second {
			// A slow pace (one message at a time) is spaced from when WhatsApp accepted the last
			// message, not from when it was taken from the bucket: however long a send took, two
			// acceptances are at least an interval apart. Jitter: up to a fifth of an interval
			// more, so that the sends are not evenly spaced like a machine's.
			b.notBefore = r.now().Add(iv + time.Duration(rand.Int64N(int64(iv/5))))
		}
	}
	return total, errors.Join(errs...)
}

func (r *SendCampaignOnCampaignLaunched) maybeComplete(ctx context.Context, c BookCampaign) error {
	if !c.Started {
		return nil
	}
	left, err := r.Book.Remaining(ctx, c.ID)
	if err != nil || left > 0 {
		return err
	}
	return r.Campaigns.CompleteCampaign(ctx, c.ID)
}

// sendFor sends one campaign's share: recipients[:retries] are intents without outcome (sent
// again with their recorded text and the same id), the rest new recipients (checked, rendered,
// recorded as intents, then sent).
func (r *SendCampaignOnCampaignLaunched) sendFor(ctx context.Context, c BookCampaign, recipients []BookRecipient, retries int, now time.Time) (int, error) {
	ref := whatsapp.AccountRef{ID: c.AccountID, WorkspaceID: c.WorkspaceID}
	retries = min(retries, len(recipients))
	type job struct {
		BookRecipient
		to, text string
	}
	var jobs []job
	// Intents without outcome: their text is the one recorded.
	for _, rc := range recipients[:retries] {
		text, ok, err := r.Directory.SentText(ctx, c.AccountID, rc.MessageID)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue // the read model has not shown it yet: next step
		}
		jobs = append(jobs, job{BookRecipient: rc, text: text})
	}
	fresh := recipients[retries:]
	ids := make([]uuid.UUID, 0, len(recipients))
	for _, rc := range recipients {
		ids = append(ids, rc.ContactID)
	}
	data, err := r.Directory.Recipients(ctx, c.WorkspaceID, ids)
	if err != nil {
		return 0, err
	}
	for i := range jobs {
		jobs[i].to = data[jobs[i].ContactID].Phone
	}
	body, err := campaign.ParseBody(c.Body)
	if err != nil {
		return 0, err
	}
	var skipped []campaign.Member
	var queued []job
	var phones []string
	for _, rc := range fresh {
		d, ok := data[rc.ContactID]
		switch {
		case !ok:
			skipped = append(skipped, campaign.Member{ContactID: rc.ContactID, Skip: campaign.SkipContactDeleted})
		case d.OptedOut:
			skipped = append(skipped, campaign.Member{ContactID: rc.ContactID, Skip: campaign.SkipOptedOut})
		default:
			queued = append(queued, job{BookRecipient: rc, to: d.Phone, text: body.Render(d.Recipient)})
			phones = append(phones, d.Phone)
		}
	}
	if checker, ok := r.Gateway.(NumberChecker); ok && len(phones) > 0 {
		on, err := checker.OnWhatsApp(ctx, ref, phones)
		var se *whatsapp.SendError
		if errors.As(err, &se) && se.Code == campaign.FailNotConnected {
			return 0, nil // reconnecting: next step
		}
		if err != nil {
			return 0, err
		}
		kept := queued[:0]
		for _, j := range queued {
			if on[j.to] {
				kept = append(kept, j)
			} else {
				skipped = append(skipped, campaign.Member{ContactID: j.ContactID, Skip: campaign.SkipNotOnWhatsApp})
			}
		}
		queued = kept
	}
	msgs := make([]commands.CampaignMessage, len(queued))
	for i, j := range queued {
		msgs[i] = commands.CampaignMessage{ContactID: j.ContactID, MessageID: j.MessageID, Text: j.text}
	}
	if len(msgs) > 0 || len(skipped) > 0 {
		if _, err := r.Campaigns.QueueCampaignMessages(ctx, commands.CampaignBatch{CampaignID: c.ID, WorkspaceID: c.WorkspaceID,
			AccountID: c.AccountID, Messages: msgs, Skipped: skipped}); err != nil {
			return 0, err
		}
		if err := r.Book.Intended(ctx, c.ID, contactsOf(msgs), now); err != nil {
			return 0, err
		}
		skippedIDs := make([]uuid.UUID, len(skipped))
		for i, s := range skipped {
			skippedIDs[i] = s.ContactID
		}
		if err := r.Book.Done(ctx, c.ID, skippedIDs); err != nil {
			return 0, err
		}
	}
	jobs = append(jobs, queued...)
	if len(jobs) == 0 {
		return 0, nil
	}
	// Send, a few at a time; outcomes are recorded together.
	type result struct {
		job
		err error
		at  time.Time
	}
	results := make([]result, len(jobs))
	conc := r.Concurrency
	if conc <= 0 {
		conc = 16
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	sendCtx := context.WithoutCancel(ctx)
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := r.Gateway.Send(sendCtx, ref, whatsapp.Outgoing{MessageID: j.MessageID, To: j.to, Text: j.text, MediaID: c.MediaID})
			results[i] = result{job: j, err: err, at: r.now()}
		}()
	}
	wg.Wait()
	var outcomes []commands.CampaignOutcome
	var done []uuid.UUID
	var pause, detail string
	sent := 0
	for _, res := range results {
		if res.err == nil {
			outcomes = append(outcomes, commands.CampaignOutcome{ContactID: res.ContactID, MessageID: res.MessageID, Sent: true, At: res.at})
			done = append(done, res.ContactID)
			r.noteOutcome(c.ID, false)
			sent++
			continue
		}
		code := "SEND_FAILED"
		var se *whatsapp.SendError
		if errors.As(res.err, &se) {
			code = se.Code
		}
		switch {
		case code == campaign.FailTimelock:
			pause, detail = campaign.PauseReachOutTimelock, res.err.Error()
			continue // sent again, with the same id, once the campaign is resumed
		case code == campaign.FailNotConnected:
			// The account is reconnecting (after a restart, a network drop): the message waits,
			// with its id. Should the connection not come back, the account's state says so
			// and the campaign pauses.
			if err := r.Book.Retry(ctx, c.ID, res.ContactID, res.Attempts, now.Add(time.Second)); err != nil {
				return sent, err
			}
			continue
		case campaign.Retryable(code) && res.Attempts+1 < campaign.MaxAttempts:
			r.noteOutcome(c.ID, true)
			if err := r.Book.Retry(ctx, c.ID, res.ContactID, res.Attempts+1, now.Add(r.retryDelay(res.Attempts+1))); err != nil {
				return sent, err
			}
			continue
		}
		r.noteOutcome(c.ID, true)
		outcomes = append(outcomes, commands.CampaignOutcome{ContactID: res.ContactID, MessageID: res.MessageID, Code: code, Error: res.err.Error()})
		done = append(done, res.ContactID)
	}
	if err := r.Campaigns.RecordCampaignOutcomes(sendCtx, c.WorkspaceID, outcomes); err != nil {
		return sent, err
	}
	if err := r.Book.Done(sendCtx, c.ID, done); err != nil {
		return sent, err
	}
	if pause == "" && r.failingTooOften(c.ID) {
		pause, detail = campaign.PauseFailureRate, "too many of the latest sends failed"
	}
	if pause != "" {
		r.resetFailures(c.ID)
		if err := r.Campaigns.AutoPauseCampaign(sendCtx, c.ID, pause, detail); err != nil {
			return sent, err
		}
	}
	return len(jobs), nil
}

func (r *SendCampaignOnCampaignLaunched) retryDelay(attempt int) time.Duration {
	d := campaign.RetryDelay(attempt)
	if r.RetryBase > 0 {
		d = time.Duration(float64(d) * r.RetryBase)
	}
	return d
}

func contactsOf(msgs []commands.CampaignMessage) []uuid.UUID {
	out := make([]uuid.UUID, len(msgs))
	for i, m := range msgs {
		out[i] = m.ContactID
	}
	return out
}

func (r *SendCampaignOnCampaignLaunched) noteOutcome(id uuid.UUID, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures == nil {
		r.failures = map[uuid.UUID][]bool{}
	}
	l := append(r.failures[id], failed)
	if len(l) > campaign.FailureWindow {
		l = l[len(l)-campaign.FailureWindow:]
	}
	r.failures[id] = l
}

func (r *SendCampaignOnCampaignLaunched) failingTooOften(id uuid.UUID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return campaign.FailureRateExceeded(r.failures[id])
}

func (r *SendCampaignOnCampaignLaunched) resetFailures(id uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.failures, id)
}
