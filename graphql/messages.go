package graphql

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/graphql/model"
	wa "github.com/mydigibiz/digibiz/infra/whatsapp"
	"github.com/mydigibiz/digibiz/projections"
)

// SimulatorControls are the simulated WhatsApp's operations (infra/whatsapp.Simulator); nil
// with a real gateway.
type SimulatorControls interface {
	SimulateInbound(ctx context.Context, account whatsapp.AccountRef, from, text string) (string, error)
	Messages(ctx context.Context, account uuid.UUID, afterSeq int64, first int) ([]wa.SimulatorMessage, bool, int, error)
}

const kindMediaFile = "MediaFile"

func errNotSimulator(op string) error {
	return fault.New(fault.Forbidden, "%s runs only with the simulator WhatsApp gateway (DIGIBIZ_WHATSAPP=simulator); this server talks to the real WhatsApp.", op)
}

func (r *Resolver) contactMessages(ctx context.Context, c *projections.Contact, first *int, after *string) (*model.MessageConnection, error) {
	if _, err := r.requireWorkspace(ctx, c.WorkspaceID); err != nil {
		return nil, err
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	ms, hasNext, total, err := r.Contacts.MessagesOfContact(ctx, c.ID, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(ms, hasNext, func(m projections.Message) string { return m.Cursor().Encode() },
		func(c string, m *projections.Message) model.MessageEdge { return model.MessageEdge{Cursor: c, Node: m} })
	out := &model.MessageConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}
	return out, nil
}

func (r *Resolver) sendWhatsAppMessage(ctx context.Context, in model.SendWhatsAppMessageInput) (*model.SendWhatsAppMessagePayload, error) {
	a, err := r.accountOf(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	c, err := r.contactOf(ctx, in.ContactID)
	if err != nil {
		return nil, err
	}
	if c.WorkspaceID != a.WorkspaceID {
		return nil, fault.New(fault.NotFound, "Contact not found.")
	}
	res, last, err := r.Commands.SendWhatsAppMessage(ctx, caller(ctx), commands.SendWhatsAppMessage{WorkspaceID: a.WorkspaceID,
		AccountID: a.ID, ContactID: c.ID, Text: in.Text, ClientMutationID: deref(in.ClientMutationID)})
	ue, m, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.Message, error) {
		return r.Contacts.MessageByID(ctx, res.ContactID, res.MessageID)
	})
	if err != nil {
		return nil, err
	}
	return &model.SendWhatsAppMessagePayload{Message: m, UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
}

func (r *Resolver) simulateInboundMessage(ctx context.Context, in model.SimulateInboundMessageInput) (*model.SimulatePayload, error) {
	if r.Simulator == nil {
		return nil, errNotSimulator("simulateInboundMessage")
	}
	a, err := r.accountOf(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	out := &model.SimulatePayload{UserErrors: []model.UserError{}, ClientMutationID: in.ClientMutationID}
	from, err := normalizeSender(in.From)
	var text string
	if err == nil {
		text, err = identity.CleanText("text", "Text", in.Text, 1, 65536)
	}
	if err == nil {
		var id string
		id, err = r.Simulator.SimulateInbound(ctx, whatsapp.AccountRef{ID: a.ID, WorkspaceID: a.WorkspaceID}, from, text)
		var se *whatsapp.SendError
		if errors.As(err, &se) {
			err = fault.InvalidField("accountId", se.Code, "The simulated message was not delivered: %s.", se.Message)
		}
		if err == nil {
			out.MessageID = &id
		}
	}
	ue, err := userErrors(err)
	if err != nil {
		return nil, err
	}
	out.UserErrors = ue
	if len(ue) > 0 {
		return out, nil
	}
	// The contact the message went to, once the read model has it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := r.Contacts.ContactByPhone(ctx, a.WorkspaceID, from); err == nil {
			out.Contact = &c
			break
		}
		select {
		case <-ctx.Done():
			return out, nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	return out, nil
}

func (r *Resolver) simulatorMessages(ctx context.Context, accountID string, first *int, after *string) (*model.SimulatorMessageConnection, error) {
	if r.Simulator == nil {
		return nil, errNotSimulator("simulatorMessages")
	}
	a, err := r.accountOf(ctx, accountID)
	if err != nil {
		return nil, err
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	var seq int64
	if after != nil && *after != "" {
		if seq, err = strconv.ParseInt(*after, 10, 64); err != nil || seq < 0 {
			return nil, fault.InvalidField("after", "INVALID_CURSOR", "after is not a cursor of this list.")
		}
	}
	ms, more, total, err := r.Simulator.Messages(ctx, a.ID, seq, n)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(ms, more, func(m wa.SimulatorMessage) string { return strconv.FormatInt(m.Seq, 10) },
		func(c string, m *wa.SimulatorMessage) model.SimulatorMessageEdge {
			return model.SimulatorMessageEdge{Cursor: c, Node: m}
		})
	out := &model.SimulatorMessageConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}
	return out, nil
}

// normalizeSender checks a simulated sender's number: E.164, as WhatsApp gives it.
func normalizeSender(from string) (string, error) {
	p, err := contact.NormalizePhone(from, "")
	if err != nil {
		return "", fault.InvalidField("from", "INVALID_PHONE", "from is not a phone number in international form: %s", err.Error())
	}
	return p, nil
}
