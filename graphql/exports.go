package graphql

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/projections"
)

// ExportsHandler serves exports over plain HTTP with the same token, limits and access log as
// GraphQL: GET /exports/campaigns/{id}/recipients.csv (scopes CAMPAIGNS_READ and CONTACTS_READ:
// it lists people's numbers).
func (r *Resolver) ExportsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /exports/campaigns/{id}/recipients.csv", r.exportCampaignRecipients)
	return r.httpMiddleware(mux)
}

// exportCampaignRecipients writes a campaign's recipients as CSV, in the order they are messaged,
// streamed a page at a time.
func (r *Resolver) exportCampaignRecipients(w http.ResponseWriter, req *http.Request) {
	ctx := context.WithValue(req.Context(), opStateKey{}, &opState{})
	p := PrincipalFrom(ctx)
	if p == nil {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", errSignIn().Error())
		return
	}
	status := "OK"
	start := time.Now()
	defer func() { r.recordExport(ctx, "export campaign recipients", status, time.Since(start)) }()
	fail := func(err error) {
		code := fault.KindOf(err)
		status = code.Code()
		switch code {
		case fault.NotFound:
			writeError(w, http.StatusNotFound, status, err.Error())
		case fault.Forbidden:
			writeError(w, http.StatusForbidden, status, err.Error())
		case fault.Unauthenticated:
			writeError(w, http.StatusUnauthorized, status, err.Error())
		default:
			status = "INTERNAL"
			logInternal(ctx, r.Logger, err)
			writeError(w, http.StatusInternalServerError, status, "Internal error.")
		}
	}
	c, err := r.campaignOf(withRequirement(ctx, requirement{scope: identity.ScopeCampaignsRead}), req.PathValue("id"))
	if err != nil {
		fail(err)
		return
	}
	if _, err := r.requireWorkspace(withRequirement(ctx, requirement{scope: identity.ScopeContactsRead}), c.WorkspaceID); err != nil {
		fail(err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="campaign-%s-recipients.csv"`, c.ID))
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"phone", "name", "status", "error", "message_id", "sent_at", "delivered_at", "read_at", "replied_at"})
	err = r.Campaigns.EachRecipient(ctx, c.ID, func(x projections.CampaignRecipient) error {
		return cw.Write([]string{cell(deref(x.Phone)), cell(deref(x.Name)), x.Status, cell(x.Error), x.MessageID,
			at(x.SentAt), at(x.DeliveredAt), at(x.ReadAt), at(x.RepliedAt)})
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil {
		// The header is out: the client sees a cut file (and the log says why).
		status = "INTERNAL"
		logInternal(ctx, r.Logger, err)
	}
}

func at(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// cell neutralises a value a spreadsheet would run as a formula (OWASP "CSV injection"): one that
// starts with =, +, -, @, a tab or a carriage return is prefixed with a quote. Phone numbers
// (+49...) are prefixed too: a spreadsheet would otherwise read them as arithmetic.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// recordExport logs an export like a GraphQL operation.
func (r *Resolver) recordExport(ctx context.Context, operation, status string, took time.Duration) {
	p := PrincipalFrom(ctx)
	if p == nil || r.AccessLog == nil {
		return
	}
	ws := uuid.Nil
	if st := opStateFrom(ctx); st != nil {
		st.mu.Lock()
		ws = st.workspaceID
		st.mu.Unlock()
	}
	if p.IsToken() {
		ws = p.TokenWorkspaceID
	}
	info := RequestInfoFrom(ctx)
	r.AccessLog.Record(AccessEntry{At: r.now().Add(-took), Duration: took, WorkspaceID: ws, UserID: p.UserID, APITokenID: p.APITokenID,
		Operation: operation, Transport: "http", IP: info.IP, UserAgent: info.UserAgent, Status: status, RequestID: info.RequestID})
}
