package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

type messageJSON struct {
	ID, Direction, Status                 string
	Text, FailureCode                     *string
	SentAt, DeliveredAt, ReadAt, Received *string
}

const messageFields = `id direction status text failureCode sentAt deliveredAt readAt receivedAt`

func (s *testServer) messages(token, ws, contactID string) []messageJSON {
	s.t.Helper()
	var out struct {
		Workspace struct {
			Contact struct {
				Messages struct{ Nodes []messageJSON }
			}
		}
	}
	s.must(token, `query($ws: ID!, $id: ID!) { workspace(id: $ws) { contact(id: $id) { messages { nodes { `+messageFields+` } } } } }`,
		map[string]any{"ws": ws, "id": contactID}, &out)
	return out.Workspace.Contact.Messages.Nodes
}

// pgDumpTables dumps the named tables of the database.
func pgDumpTables(t *testing.T, url string, tables ...string) string {
	t.Helper()
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump not installed")
	}
	args := []string{"--no-owner", "--data-only"}
	for _, tb := range tables {
		args = append(args, "--table="+tb)
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), "pg_dump", append(args, url)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return out.String()
}

// A message from a new number creates its contact (INBOUND) and the message; a reply is sent
// once (simulatorMessages), and its receipts move it to DELIVERED and READ; nothing of the person
// or the conversation is in clear in the log.
func TestConversationWithANewNumber(t *testing.T) {
	t.Parallel()
	cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator"}
	cfg.Simulator.DeliverDelay, cfg.Simulator.ReadDelay = 50*time.Millisecond, 150*time.Millisecond
	cfg.Simulator.NotOnWhatsApp = []string{"+4930"}
	s := startServerWith(t, cfg)
	owner := s.signUp("Chat Owner", "chat@example.com", strongPassword, "Chat Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	acct := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "Chat line"}`, nil).WhatsAppAccount
	s.waitStatus(tok, ws, acct.ID, "CONNECTED")

	var sim struct {
		SimulateInboundMessage struct {
			MessageID *string
			Contact   *struct {
				ID, Phone, Source string
				Name              *string
			}
			UserErrors []userErr
		}
	}
	s.must(tok, `mutation($in: SimulateInboundMessageInput!) { simulateInboundMessage(input: $in) { messageId contact { id phone name source } userErrors { field code message } } }`,
		map[string]any{"in": map[string]any{"accountId": acct.ID, "from": "+4915199998888", "text": "Do you deliver on Sundays? Order 4711"}}, &sim)
	require.Empty(t, sim.SimulateInboundMessage.UserErrors)
	c := sim.SimulateInboundMessage.Contact
	require.NotNil(t, c)
	require.Equal(t, "+4915199998888", c.Phone)
	require.Equal(t, "INBOUND", c.Source)
	ms := s.messages(tok, ws, c.ID)
	require.Len(t, ms, 1)
	require.Equal(t, "INBOUND", ms[0].Direction)
	require.Equal(t, "RECEIVED", ms[0].Status)
	require.Equal(t, "Do you deliver on Sundays? Order 4711", *ms[0].Text)
	require.Equal(t, *sim.SimulateInboundMessage.MessageID, ms[0].ID)

	// WhatsApp delivering the same message again stores nothing more.
	ref := whatsapp.AccountRef{ID: decodeTestID(t, acct.ID), WorkspaceID: decodeTestID(t, ws)}
	again := whatsapp.InboundMessage{MessageID: ms[0].ID, From: "+4915199998888", Text: "Do you deliver on Sundays? Order 4711", SentAt: time.Now()}
	require.NoError(t, s.app.Resolver.Commands.ReceiveWhatsAppMessage(context.Background(), ref, again))
	require.NoError(t, s.app.Resolver.Commands.ReceiveWhatsAppMessage(context.Background(), ref, again))
	// A second message from the same number goes to the same contact.
	second := whatsapp.InboundMessage{MessageID: "SECOND1", From: "+4915199998888", FromLID: "246813579024680@lid", PushName: "Zelda Quartermain", Text: "Hello?", SentAt: time.Now()}
	require.NoError(t, s.app.Resolver.Commands.ReceiveWhatsAppMessage(context.Background(), ref, second))
	require.Eventually(t, func() bool { return len(s.messages(tok, ws, c.ID)) == 2 }, 10*time.Second, 20*time.Millisecond)
	var count struct {
		Workspace struct{ Contacts struct{ TotalCount int } }
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts { totalCount } } }`, map[string]any{"ws": ws}, &count)
	require.Equal(t, 1, count.Workspace.Contacts.TotalCount)
	var lid struct {
		Workspace struct {
			Contact struct{ WhatsAppJid, WhatsAppLid string }
		}
	}
	require.Eventually(t, func() bool {
		s.must(tok, `query($ws: ID!, $id: ID!) { workspace(id: $ws) { contact(id: $id) { whatsAppJid whatsAppLid } } }`, map[string]any{"ws": ws, "id": c.ID}, &lid)
		return lid.Workspace.Contact.WhatsAppLid != ""
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "4915199998888@s.whatsapp.net", lid.Workspace.Contact.WhatsAppJid)
	require.Equal(t, "246813579024680@lid", lid.Workspace.Contact.WhatsAppLid, "both JIDs kept on the contact")

	// The reply: SENT once WhatsApp accepted it, then DELIVERED and READ.
	send := func(contactID, text, cmid string) (messageJSON, []userErr) {
		var out struct {
			SendWhatsAppMessage struct {
				Message    *messageJSON
				UserErrors []userErr
			}
		}
		in := map[string]any{"accountId": acct.ID, "contactId": contactID, "text": text}
		if cmid != "" {
			in["clientMutationId"] = cmid
		}
		s.must(tok, `mutation($in: SendWhatsAppMessageInput!) { sendWhatsAppMessage(input: $in) { message { `+messageFields+` } userErrors { field code message } } }`,
			map[string]any{"in": in}, &out)
		if out.SendWhatsAppMessage.Message == nil {
			return messageJSON{}, out.SendWhatsAppMessage.UserErrors
		}
		return *out.SendWhatsAppMessage.Message, out.SendWhatsAppMessage.UserErrors
	}
	reply, ue := send(c.ID, "Yes, until 6pm on Sundays", "reply-1")
	require.Empty(t, ue)
	require.Equal(t, "OUTBOUND", reply.Direction)
	require.Contains(t, []string{"SENT", "DELIVERED", "READ"}, reply.Status)
	require.NotNil(t, reply.SentAt)
	retried, ue := send(c.ID, "Yes, until 6pm on Sundays", "reply-1")
	require.Empty(t, ue)
	require.Equal(t, reply.ID, retried.ID, "a retried mutation is the same message")
	require.Eventually(t, func() bool {
		for _, m := range s.messages(tok, ws, c.ID) {
			if m.ID == reply.ID {
				return m.Status == "READ" && m.DeliveredAt != nil && m.ReadAt != nil
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)

	// What a retry receipt would be answered with (the whatsmeow gateway asks this).
	text, found, err := s.app.Resolver.Contacts.SentText(context.Background(), ref.ID, reply.ID)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "Yes, until 6pm on Sundays", text)
	_, found, err = s.app.Resolver.Contacts.SentText(context.Background(), ref.ID, ms[0].ID)
	require.NoError(t, err)
	require.False(t, found, "an inbound message is not ours to resend")

	var simMsgs struct {
		SimulatorMessages struct {
			TotalCount int
			Nodes      []struct{ MessageID, To, Text string }
		}
	}
	s.must(tok, `query($id: ID!) { simulatorMessages(accountId: $id) { totalCount nodes { messageId to text } } }`, map[string]any{"id": acct.ID}, &simMsgs)
	require.Equal(t, 1, simMsgs.SimulatorMessages.TotalCount, "sent once")
	require.Equal(t, reply.ID, simMsgs.SimulatorMessages.Nodes[0].MessageID)
	require.Equal(t, "+4915199998888", simMsgs.SimulatorMessages.Nodes[0].To)

	// A number without WhatsApp: FAILED, with the reason.
	landline, cue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+493012345678", "name": "Landline"})
	require.Empty(t, cue)
	failed, ue := send(landline.ID, "Hello landline", "")
	require.Empty(t, ue)
	require.Equal(t, "FAILED", failed.Status)
	require.Equal(t, "NOT_ON_WHATSAPP", *failed.FailureCode)

	// Bad input changes nothing.
	_, ue = send(c.ID, "   ", "")
	require.Equal(t, "REQUIRED", ue[0].Code)

	// What a hostile phone sends (NUL, broken UTF-8, a huge text) is stored as text, and the
	// read models go on.
	hostile := whatsapp.InboundMessage{MessageID: "EVIL\x00ID", From: "+4915199998888", PushName: "\x00\xff", SentAt: time.Now(),
		Text: "a\x00b\xffc" + strings.Repeat("x", 70000)}
	require.NoError(t, s.app.Resolver.Commands.ReceiveWhatsAppMessage(context.Background(), ref, hostile))
	require.Eventually(t, func() bool {
		ms := s.messages(tok, ws, c.ID)
		return len(ms) > 0 && ms[0].ID == "EVILID"
	}, 10*time.Second, 20*time.Millisecond)
	evil := s.messages(tok, ws, c.ID)[0]
	require.True(t, strings.HasPrefix(*evil.Text, "ab\uFFFDc"))
	require.Equal(t, 65536, utf8.RuneCountInString(*evil.Text))

	// A document received with its file: the message shows it, and node() finds it.
	doc := whatsapp.InboundMessage{MessageID: "DOC1", From: "+4915199998888", Text: "the invoice", MediaKind: "DOCUMENT", SentAt: time.Now(),
		Media: &whatsapp.StoredMedia{ID: uuid.New(), MimeType: "application/pdf", FileName: "invoice-quartermain.pdf", Size: 1234, SHA256: strings.Repeat("ab", 32)}}
	require.NoError(t, s.app.Resolver.Commands.ReceiveWhatsAppMessage(context.Background(), ref, doc))
	var withMedia struct {
		Workspace struct {
			Contact struct {
				Messages struct {
					Nodes []struct {
						ID    string
						Media *struct {
							ID, FileName, MimeType, Sha256 string
							Size                           int
						}
					}
				}
			}
		}
	}
	require.Eventually(t, func() bool {
		s.must(tok, `query($ws: ID!, $id: ID!) { workspace(id: $ws) { contact(id: $id) { messages(first: 1) { nodes { id media { id fileName mimeType size sha256 } } } } } }`,
			map[string]any{"ws": ws, "id": c.ID}, &withMedia)
		n := withMedia.Workspace.Contact.Messages.Nodes
		return len(n) == 1 && n[0].ID == "DOC1"
	}, 10*time.Second, 20*time.Millisecond)
	media := withMedia.Workspace.Contact.Messages.Nodes[0].Media
	require.NotNil(t, media)
	require.Equal(t, "invoice-quartermain.pdf", media.FileName)
	require.Equal(t, 1234, media.Size)
	var node struct{ Node *struct{ MimeType string } }
	s.must(tok, `query($id: ID!) { node(id: $id) { ... on MediaFile { mimeType } } }`, map[string]any{"id": media.ID}, &node)
	require.Equal(t, "application/pdf", node.Node.MimeType)

	// Bad simulated messages change nothing; a disconnected account receives none.
	simulate := func(from, text string) []userErr {
		var out struct {
			SimulateInboundMessage struct{ UserErrors []userErr }
		}
		s.must(tok, `mutation($in: SimulateInboundMessageInput!) { simulateInboundMessage(input: $in) { userErrors { field code message } } }`,
			map[string]any{"in": map[string]any{"accountId": acct.ID, "from": from, "text": text}}, &out)
		return out.SimulateInboundMessage.UserErrors
	}
	require.Equal(t, "INVALID_PHONE", simulate("not a phone", "hi")[0].Code)
	require.Equal(t, "REQUIRED", simulate("+4915199990000", " ")[0].Code)
	require.Equal(t, "TOO_LONG", simulate("+4915199990000", strings.Repeat("x", 65537))[0].Code)
	require.Empty(t, s.accountMutation(tok, "disconnectWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil).UserErrors)
	require.Equal(t, "NOT_CONNECTED", simulate("+4915199990000", "anyone there?")[0].Code)
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts { totalCount } } }`, map[string]any{"ws": ws}, &count)
	require.Equal(t, 2, count.Workspace.Contacts.TotalCount, "the two contacts from before, no more")

	// Nothing of the person or the conversation in clear in the log.
	dump := pgDumpTables(t, cfg.DatabaseURL, "events", "streams", "unique_claims")
	// (Each secret is long or has characters base64 lacks, so that sealed text cannot spell it by chance.)
	for _, secret := range []string{"+4915199998888", "4915199998888", "Sundays", "Order 4711", "Hello?", "until 6pm on Sundays", "Zelda Quartermain", "Landline", "Hello landline", "invoice-quartermain", "the invoice", "246813579024680"} {
		require.NotContains(t, dump, secret)
	}
	require.True(t, strings.Contains(dump, "contact.message_received"), "the dump holds the events")
}

// With the whatsmeow gateway the simulator's operations refuse to run, whatever the caller.
func TestSimulatorOperationsRefusedWithWhatsmeow(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "whatsmeow"})
	owner := s.signUp("Real Owner", "real@example.com", strongPassword, "Real Shop")
	id := encodeGlobalIDForTest("WhatsAppAccount", "00000000-0000-4000-8000-000000000001")
	r := s.do(*owner.Token, `mutation($in: SimulateInboundMessageInput!) { simulateInboundMessage(input: $in) { messageId } }`,
		map[string]any{"in": map[string]any{"accountId": id, "from": "+4915100000000", "text": "hi"}}, nil)
	require.Equal(t, "FORBIDDEN", r.code())
	require.Contains(t, r.Errors[0].Message, "simulator")
	r = s.do(*owner.Token, `query($id: ID!) { simulatorMessages(accountId: $id) { totalCount } }`, map[string]any{"id": id}, nil)
	require.Equal(t, "FORBIDDEN", r.code())
}

// encodeGlobalIDForTest writes a global id the way the server does.
func encodeGlobalIDForTest(kind, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + id))
}

// The simulator's rates: after TimelockAfter sends a number may not start conversations (the
// next send to a new number fails REACH_OUT_TIMELOCK, the account says until when); after
// BanAfter sends it is banned, and the account says BANNED.
func TestSimulatedTimelockAndBanRates(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name          string
		ban, timelock int
	}{{"timelock", 0, 2}, {"ban", 2, 0}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator"}
			cfg.Simulator.BanAfter, cfg.Simulator.TimelockAfter = c.ban, c.timelock
			s := startServerWith(t, cfg)
			owner := s.signUp("Rate Owner", "rates@example.com", strongPassword, "Rate Shop")
			tok, ws := *owner.Token, owner.Workspace.ID
			acct := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "Busy line"}`, nil).WhatsAppAccount
			s.waitStatus(tok, ws, acct.ID, "CONNECTED")
			send := func(phone string) string {
				ct, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": phone})
				require.Empty(t, ue)
				var out struct {
					SendWhatsAppMessage struct {
						Message *struct {
							Status      string
							FailureCode *string
						}
						UserErrors []userErr
					}
				}
				s.must(tok, `mutation($in: SendWhatsAppMessageInput!) { sendWhatsAppMessage(input: $in) { message { status failureCode } userErrors { code } } }`,
					map[string]any{"in": map[string]any{"accountId": acct.ID, "contactId": ct.ID, "text": "Spring sale"}}, &out)
				if len(out.SendWhatsAppMessage.UserErrors) > 0 {
					return out.SendWhatsAppMessage.UserErrors[0].Code
				}
				if m := out.SendWhatsAppMessage.Message; m.FailureCode != nil {
					return *m.FailureCode
				}
				return out.SendWhatsAppMessage.Message.Status
			}
			require.NotEqual(t, "FAILED", send("+12025550101"))
			require.NotEqual(t, "FAILED", send("+12025550102"))
			if c.timelock > 0 {
				require.Eventually(t, func() bool { return s.accounts(tok, ws)[0].ReachOutTimelockedUntil != nil }, 10*time.Second, 20*time.Millisecond)
				require.Equal(t, "REACH_OUT_TIMELOCK", send("+12025550103"))
				require.Equal(t, "CONNECTED", s.accounts(tok, ws)[0].Status)
			} else {
				a := s.waitStatus(tok, ws, acct.ID, "BANNED")
				require.NotNil(t, a.BannedUntil)
				require.Equal(t, "NOT_CONNECTED", send("+12025550103"), "a banned number sends nothing")
			}
		})
	}
}
