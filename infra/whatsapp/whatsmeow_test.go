package whatsapp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/blob"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// fakeClient stands in for whatsmeow.Client up to the network.
type fakeClient struct {
	mu        sync.Mutex
	sendErr   error
	sent      []*waE2E.Message
	sentIDs   []types.MessageID
	retry     func(requester, to types.JID, id types.MessageID) *waE2E.Message
	device    *store.Device
	handler   whatsmeow.EventHandlerWithSuccessStatus
	connected bool
	connects  int
	qr        chan whatsmeow.QRChannelItem
	paired    string // the phone a pair code was asked for
	uploads   int
}

func (f *fakeClient) Connect() error {
	f.mu.Lock()
	f.connected = true
	f.connects++
	h, linked := f.handler, f.device.ID != nil
	f.mu.Unlock()
	if linked { // whatsmeow says Connected once logged in; a pairing connection says QR instead
		go h(&events.Connected{})
	}
	return nil
}
func (f *fakeClient) Disconnect()                      { f.mu.Lock(); f.connected = false; f.mu.Unlock() }
func (f *fakeClient) Logout(ctx context.Context) error { f.Disconnect(); return nil }
func (f *fakeClient) IsConnected() bool                { f.mu.Lock(); defer f.mu.Unlock(); return f.connected }
func (f *fakeClient) GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	return f.qr, nil
}
func (f *fakeClient) PairPhone(ctx context.Context, phone string, push bool, ct whatsmeow.PairClientType, name string) (string, error) {
	f.mu.Lock()
	f.paired = phone
	f.mu.Unlock()
	return "ABCD-1234", nil
}
func (f *fakeClient) SetMessageForRetry(r func(requester, to types.JID, id types.MessageID) *waE2E.Message) {
	f.retry = r
}
func (f *fakeClient) Download(ctx context.Context, msg whatsmeow.DownloadableMessage) ([]byte, error) {
	if len(msg.GetDirectPath()) == 0 {
		return nil, whatsmeow.ErrNoURLPresent
	}
	return []byte("media bytes of " + msg.GetDirectPath()), nil
}
func (f *fakeClient) Upload(ctx context.Context, data []byte, mt whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	f.mu.Lock()
	f.uploads++
	f.mu.Unlock()
	return whatsmeow.UploadResponse{URL: "https://mmg.example/x", DirectPath: "/v/x", MediaKey: []byte("key"), FileLength: uint64(len(data))}, nil
}
func (f *fakeClient) IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error) {
	out := make([]types.IsOnWhatsAppResponse, len(phones))
	for i, p := range phones {
		in := !strings.HasPrefix(p, "+4930")
		out[i] = types.IsOnWhatsAppResponse{Query: p, IsIn: in}
		if in {
			out[i].JID = types.NewJID(strings.TrimPrefix(p, "+"), types.DefaultUserServer)
		}
	}
	return out, nil
}
func (f *fakeClient) GetJoinedGroups(ctx context.Context) ([]*types.GroupInfo, error) {
	return nil, nil
}
func (f *fakeClient) AddEventHandlerWithSuccessStatus(h whatsmeow.EventHandlerWithSuccessStatus) uint32 {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
	return 1
}
func (f *fakeClient) SendMessage(ctx context.Context, to types.JID, m *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return whatsmeow.SendResponse{}, f.sendErr
	}
	f.sent = append(f.sent, m)
	for _, e := range extra {
		f.sentIDs = append(f.sentIDs, e.ID)
	}
	return whatsmeow.SendResponse{}, nil
}

type reports struct {
	mu   sync.Mutex
	got  []whatsapp.Report
	fail bool
}

func (r *reports) record(ctx context.Context, a whatsapp.AccountRef, rep whatsapp.Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return context.DeadlineExceeded
	}
	r.got = append(r.got, rep)
	return nil
}

func (r *reports) kinds() []whatsapp.ReportKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []whatsapp.ReportKind
	for _, x := range r.got {
		out = append(out, x.Kind)
	}
	return out
}

type fakes struct {
	mu      sync.Mutex
	clients []*fakeClient
}

func (f *fakes) factory(device *store.Device, log waLog.Logger) Client {
	c := &fakeClient{device: device, qr: make(chan whatsmeow.QRChannelItem, 4)}
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return c
}

func (f *fakes) last() *fakeClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clients[len(f.clients)-1]
}

// whatsmeow's store is created on the product's database by its own upgrade, and opening it
// again (a restart) finds it in place.
func TestWhatsmeowStoreUpgrades(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var rep reports
	w, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{}, Sink{Report: rep.record})
	require.NoError(t, err)
	w.Close()
	var tables []string
	rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE tablename LIKE 'whatsmeow_%' ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		tables = append(tables, s)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, tables, "whatsmeow_device")
	require.Contains(t, tables, "whatsmeow_sessions")
	require.Contains(t, tables, "whatsmeow_lid_map")
	w2, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{}, Sink{Report: rep.record})
	require.NoError(t, err)
	w2.Close()
}

// Each whatsmeow connection event becomes the report that keeps the account's state true.
func TestTranslateWhatsmeowEvents(t *testing.T) {
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	jid := types.NewJID("4915112345678", types.DefaultUserServer)
	jid.Device = 7
	lid := types.NewJID("123456789012345", types.HiddenUserServer)
	cases := []struct {
		name string
		evt  any
		want whatsapp.Report
	}{
		{"pair success", &events.PairSuccess{ID: jid, LID: lid, BusinessName: "Shop", Platform: "android"},
			whatsapp.Report{Kind: whatsapp.ReportPaired, JID: "4915112345678@s.whatsapp.net", LID: "123456789012345@lid",
				Phone: "+4915112345678", PushName: "Shop", Platform: "android"}},
		{"pair error", &events.PairError{ID: jid}, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonPairingError}},
		{"connected", &events.Connected{}, whatsapp.Report{Kind: whatsapp.ReportConnected}},
		{"keep-alive restored", &events.KeepAliveRestored{}, whatsapp.Report{Kind: whatsapp.ReportConnected}},
		{"disconnected", &events.Disconnected{}, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonNetwork}},
		{"keep-alive timeout", &events.KeepAliveTimeout{ErrorCount: 3}, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonKeepAliveTimeout}},
		{"stream replaced", &events.StreamReplaced{}, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonStreamReplaced}},
		{"client outdated", &events.ClientOutdated{}, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonClientOutdated}},
		{"logged out", &events.LoggedOut{OnConnect: true, Reason: events.ConnectFailureLoggedOut},
			whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout, Code: 401}},
		{"connect failure: logged out", &events.ConnectFailure{Reason: events.ConnectFailureMainDeviceGone},
			whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout, Code: int(events.ConnectFailureMainDeviceGone)}},
		{"connect failure: service unavailable", &events.ConnectFailure{Reason: events.ConnectFailureServiceUnavailable},
			whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: "CONNECT_FAILURE_503"}},
		{"temporary ban", &events.TemporaryBan{Code: events.TempBanSentToTooManyPeople, Expire: 24 * time.Hour},
			whatsapp.Report{Kind: whatsapp.ReportTemporaryBan, Code: 101, Until: now.Add(24 * time.Hour)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := Translate(c.evt, now)
			require.True(t, ok)
			require.Equal(t, c.want, got)
		})
	}
	_, ok := Translate(&events.Presence{}, now)
	require.False(t, ok, "not a connection event")
}

// The QR channel's items become pairing updates.
func TestPairingUpdatesFromTheQRChannel(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	u, final := pairingUpdate(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@abc", Timeout: 60 * time.Second}, now)
	require.False(t, final)
	require.Equal(t, whatsapp.PairingUpdate{Kind: whatsapp.PairingQRCode, Code: "2@abc", ExpiresAt: now.Add(time.Minute)}, u)
	for item, kind := range map[whatsmeow.QRChannelItem]whatsapp.PairingKind{
		whatsmeow.QRChannelSuccess:                   whatsapp.PairingSuccess,
		whatsmeow.QRChannelTimeout:                   whatsapp.PairingTimeout,
		whatsmeow.QRChannelClientOutdated:            whatsapp.PairingError,
		whatsmeow.QRChannelScannedWithoutMultidevice: whatsapp.PairingError,
		whatsmeow.QRChannelErrUnexpectedEvent:        whatsapp.PairingError,
	} {
		u, final := pairingUpdate(item, now)
		require.True(t, final, item.Event)
		require.Equal(t, kind, u.Kind, item.Event)
	}
}

// A pairing by code asks whatsmeow for the code once the connection is up, and the device it
// links is kept, so that the next start reconnects it; all accounts share one store and one
// database handle; a device the store lost is reported logged out; logout deletes it.
func TestWhatsmeowPairReconnectAndLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var rep reports
	var f fakes
	w, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{NewClient: f.factory}, Sink{Report: rep.record})
	require.NoError(t, err)

	ref := whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: uuid.New()}
	var mu sync.Mutex
	var updates []whatsapp.PairingUpdate
	require.NoError(t, w.Pair(ctx, ref, "+4915112345678", func(u whatsapp.PairingUpdate) { mu.Lock(); updates = append(updates, u); mu.Unlock() }))
	c := f.last()
	c.qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@x", Timeout: time.Minute}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(updates) == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, whatsapp.PairingPairCode, updates[0].Kind)
	require.Equal(t, "ABCD-1234", updates[0].Code)
	require.Equal(t, "+4915112345678", c.paired)

	// The phone links the device: whatsmeow saves it and tells us.
	jid := types.NewJID("4915112345678", types.DefaultUserServer)
	jid.Device = 3
	c.device.ID = &jid
	c.device.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	require.NoError(t, c.device.Save(ctx))
	require.True(t, c.handler(&events.PairSuccess{ID: jid, BusinessName: "Shop"}))
	require.True(t, c.handler(&events.Connected{})) // after the reconnect that follows a pairing
	c.qr <- whatsmeow.QRChannelSuccess
	close(c.qr)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(updates) == 2 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, whatsapp.PairingSuccess, updates[1].Kind)
	require.Eventually(t, func() bool {
		k := rep.kinds()
		return len(k) == 2 && k[0] == whatsapp.ReportPaired && k[1] == whatsapp.ReportConnected
	}, 10*time.Second, 5*time.Millisecond, "%v", rep.kinds())
	require.Equal(t, "+4915112345678", rep.got[0].Phone)

	// An event our side fails to record is not acknowledged (whatsmeow redelivers it).
	rep.mu.Lock()
	rep.fail = true
	rep.mu.Unlock()
	require.False(t, c.handler(&events.Disconnected{}))
	rep.mu.Lock()
	rep.fail, rep.got = false, nil
	rep.mu.Unlock()
	w.Close()
	require.Equal(t, []whatsapp.Report{{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonServerShutdown}}, rep.got,
		"a connection closed at shutdown is recorded down")
	rep.got = nil

	// A restart: a new gateway on the same store reconnects the account by its device.
	w, err = NewWhatsmeow(ctx, pool, WhatsmeowOpts{NewClient: f.factory}, Sink{Report: rep.record})
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Connect(ctx, ref))
	again := f.last()
	require.NotSame(t, c, again)
	require.Equal(t, jid, *again.device.ID, "the device whatsmeow stored")
	require.Eventually(t, func() bool { return len(rep.kinds()) == 1 && rep.kinds()[0] == whatsapp.ReportConnected }, 10*time.Second, 5*time.Millisecond)

	// A second account pairs on the same store and database handle.
	other := whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: ref.WorkspaceID}
	require.NoError(t, w.Pair(ctx, other, "", func(whatsapp.PairingUpdate) {}))
	require.Same(t, again.device.Container, f.last().device.Container, "one whatsmeow store for every account")
	require.NotNil(t, w.DB())

	// An account whose device the store no longer has is logged out.
	lost := whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: ref.WorkspaceID}
	require.NoError(t, w.Connect(ctx, lost))
	require.Equal(t, whatsapp.ReportLoggedOut, rep.kinds()[len(rep.kinds())-1])

	// Logout leaves nothing of the session behind.
	require.NoError(t, w.Logout(ctx, ref))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM whatsmeow_device WHERE jid = $1`, jid.String()).Scan(&n))
	require.Zero(t, n)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM whatsapp_devices WHERE account_id = $1`, ref.ID).Scan(&n))
	require.Zero(t, n)
}

// An inbound message or receipt is acknowledged to WhatsApp only once our side stored it.
func TestWhatsmeowAcknowledgesOnlyWhatWasStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var f fakes
	var mu sync.Mutex
	stored, receipts, failNext := []whatsapp.InboundMessage{}, []whatsapp.Receipt{}, true
	sink := Sink{
		Report: func(context.Context, whatsapp.AccountRef, whatsapp.Report) error { return nil },
		Message: func(_ context.Context, _ whatsapp.AccountRef, m whatsapp.InboundMessage) error {
			mu.Lock()
			defer mu.Unlock()
			if failNext {
				failNext = false
				return context.DeadlineExceeded
			}
			stored = append(stored, m)
			return nil
		},
		Receipt: func(_ context.Context, _ whatsapp.AccountRef, r whatsapp.Receipt) error {
			mu.Lock()
			defer mu.Unlock()
			receipts = append(receipts, r)
			return nil
		},
	}
	w, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{NewClient: f.factory}, sink)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Pair(ctx, whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: uuid.New()}, "", func(whatsapp.PairingUpdate) {}))
	c := f.last()
	sender := types.NewJID("4915112345678", types.DefaultUserServer)
	msg := &events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: sender, Sender: sender}, ID: "X1"},
		Message: &waE2E.Message{Conversation: proto.String("hello")}}
	require.False(t, c.handler(msg), "not stored: not acknowledged")
	require.True(t, c.handler(msg), "stored on redelivery: acknowledged")
	require.True(t, c.handler(&events.Receipt{MessageIDs: []types.MessageID{"3EB0X"}, Type: types.ReceiptTypeRead}))
	require.True(t, c.handler(&events.Presence{}), "nothing to store")
	require.Len(t, stored, 1)
	require.Equal(t, "hello", stored[0].Text)
	require.Equal(t, []string{"3EB0X"}, receipts[0].MessageIDs)
}

// A recipient whose phone asks for a message again gets it from what we recorded, also after a
// restart (whatsmeow's own cache of recent sends is empty then).
func TestRetryReceiptsFindOurMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var f fakes
	ref := whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: uuid.New()}
	sent := func(_ context.Context, account uuid.UUID, id string) (string, bool) {
		if account == ref.ID && id == "3EB0KNOWN" {
			return "Your order shipped", true
		}
		return "", false
	}
	w, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{NewClient: f.factory, SentText: sent}, Sink{Report: func(context.Context, whatsapp.AccountRef, whatsapp.Report) error { return nil }})
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Pair(ctx, ref, "", func(whatsapp.PairingUpdate) {}))
	c := f.last()
	require.NotNil(t, c.retry)
	to := types.NewJID("4915112345678", types.DefaultUserServer)
	require.Equal(t, "Your order shipped", c.retry(to, to, "3EB0KNOWN").GetConversation())
	require.Nil(t, c.retry(to, to, "3EB0OTHER"), "not ours")
}

// Inbound media is downloaded into the media store before the message is stored (WhatsApp's
// links expire); a file that cannot be downloaded leaves the message without it.
func TestWhatsmeowDownloadsInboundMedia(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var f fakes
	var got []whatsapp.InboundMessage
	var mu sync.Mutex
	sink := Sink{Report: func(context.Context, whatsapp.AccountRef, whatsapp.Report) error { return nil },
		Message: func(_ context.Context, _ whatsapp.AccountRef, m whatsapp.InboundMessage) error {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
			return nil
		}}
	dir := blob.Dir{Path: t.TempDir(), Suffix: ".media"}
	w, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{NewClient: f.factory, Media: dir}, sink)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Pair(ctx, whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: uuid.New()}, "", func(whatsapp.PairingUpdate) {}))
	c := f.last()
	sender := types.NewJID("4915112345678", types.DefaultUserServer)
	msg := func(id string, m *waE2E.Message) *events.Message {
		return &events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: sender, Sender: sender}, ID: types.MessageID(id)}, Message: m}
	}
	require.True(t, c.handler(msg("D1", &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{DirectPath: proto.String("/v/doc"),
		Mimetype: proto.String("application/pdf"), FileName: proto.String("invoice.pdf"), Caption: proto.String("my invoice")}})))
	require.True(t, c.handler(msg("I1", &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Mimetype: proto.String("image/jpeg")}})))
	require.Len(t, got, 2)
	doc := got[0]
	require.Equal(t, "DOCUMENT", doc.MediaKind)
	require.NotNil(t, doc.Media)
	require.Equal(t, "application/pdf", doc.Media.MimeType)
	require.Equal(t, "invoice.pdf", doc.Media.FileName)
	require.Equal(t, int64(len("media bytes of /v/doc")), doc.Media.Size)
	rc, err := dir.Open(doc.Media.ID.String())
	require.NoError(t, err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, "media bytes of /v/doc", string(b))
	require.Equal(t, "IMAGE", got[1].MediaKind)
	require.Nil(t, got[1].Media, "no link: stored without the file")
}

// A send goes with our own message id; WhatsApp's error 463 is a reach-out timelock, reported so
// the account says so, and the send fails with that reason.
func TestWhatsmeowSendsWithOurIDAndReportsTimelocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var f fakes
	var rep reports
	w, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{NewClient: f.factory}, Sink{Report: rep.record})
	require.NoError(t, err)
	defer w.Close()
	ref := whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: uuid.New()}
	out := whatsapp.Outgoing{MessageID: "3EB0OURS", To: "+4915112345678", Text: "Hello"}
	var se *whatsapp.SendError
	require.ErrorAs(t, w.Send(ctx, ref, out), &se)
	require.Equal(t, "NOT_CONNECTED", se.Code)

	require.NoError(t, w.Pair(ctx, ref, "", func(whatsapp.PairingUpdate) {}))
	c := f.last()
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	require.NoError(t, w.Send(ctx, ref, out))
	require.Equal(t, []types.MessageID{"3EB0OURS"}, c.sentIDs)
	require.Equal(t, "Hello", c.sent[0].GetConversation())

	c.mu.Lock()
	c.sendErr = fmt.Errorf("%w %d", whatsmeow.ErrServerReturnedError, 463)
	c.mu.Unlock()
	require.ErrorAs(t, w.Send(ctx, ref, out), &se)
	require.Equal(t, "REACH_OUT_TIMELOCK", se.Code)
	require.Equal(t, []whatsapp.ReportKind{whatsapp.ReportReachOutTimelock}, rep.kinds())
	require.True(t, rep.got[0].Until.After(time.Now()))

	c.mu.Lock()
	c.sendErr = fmt.Errorf("%w %d", whatsmeow.ErrServerReturnedError, 479)
	c.mu.Unlock()
	require.ErrorAs(t, w.Send(ctx, ref, out), &se)
	require.Equal(t, "SEND_FAILED", se.Code)
}

// A campaign's image is uploaded to WhatsApp once per account and sent with the text as its
// caption; numbers are checked before sending.
func TestWhatsmeowSendsMediaAndChecksNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var f fakes
	media := blob.Dir{Path: t.TempDir(), Suffix: ".media"}
	id := uuid.New()
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 64)...)
	_, _, err := media.Put(ctx, id.String(), bytes.NewReader(png))
	require.NoError(t, err)
	w, err := NewWhatsmeow(ctx, pool, WhatsmeowOpts{NewClient: f.factory, Media: media}, Sink{Report: (&reports{}).record})
	require.NoError(t, err)
	defer w.Close()
	ref := whatsapp.AccountRef{ID: uuid.New(), WorkspaceID: uuid.New()}
	require.NoError(t, w.Pair(ctx, ref, "", func(whatsapp.PairingUpdate) {}))
	c := f.last()
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	for _, to := range []string{"+4915112345678", "+4915112345679"} {
		require.NoError(t, w.Send(ctx, ref, whatsapp.Outgoing{MessageID: "3EB0" + to[1:], To: to, Text: "Spring offer", MediaID: &id}))
	}
	require.Len(t, c.sent, 2)
	img := c.sent[0].GetImageMessage()
	require.NotNil(t, img)
	require.Equal(t, "Spring offer", img.GetCaption())
	require.Equal(t, "image/png", img.GetMimetype())
	require.Equal(t, 1, c.uploads, "uploaded once for both recipients")

	gone := uuid.New()
	var se *whatsapp.SendError
	require.ErrorAs(t, w.Send(ctx, ref, whatsapp.Outgoing{MessageID: "3EB0X", To: "+4915112345678", Text: "x", MediaID: &gone}), &se)
	require.Equal(t, "MEDIA_UNAVAILABLE", se.Code)

	on, err := w.OnWhatsApp(ctx, ref, []string{"+4915112345678", "+493012345678"})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"+4915112345678": true, "+493012345678": false}, on)
}
