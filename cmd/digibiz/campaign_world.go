package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
)

// demoWorld is what `digibiz demo` and `digibiz bench campaign` set up on a running app: a
// signed-up workspace with a connected simulated number, a contact group filled by an import of
// a generated list, and a template.
type demoWorld struct {
	app                          *App
	caller                       commands.Caller
	token                        string
	ws, account, group, template uuid.UUID
	contacts                     int
}

// newDemoWorld signs up email's workspace on app (serving at base) and imports n generated
// contacts (fictional German mobile numbers) into its group "Customers".
func newDemoWorld(ctx context.Context, app *App, base, email string, n int, messagesPerMinute int) (*demoWorld, error) {
	cmds := app.Resolver.Commands
	res, last, err := cmds.SignUp(ctx, commands.Caller{}, commands.SignUp{Name: "Demo Owner", Email: email,
		Password: "correct horse battery staple", WorkspaceName: "Demo Shop"})
	if err != nil {
		return nil, fmt.Errorf("signing up: %w", err)
	}
	w := &demoWorld{app: app, caller: commands.Caller{UserID: res.UserID, RequestID: "demo"}, token: res.Token, ws: res.WorkspaceID, contacts: n}
	if messagesPerMinute > 0 {
		if _, last, err = cmds.UpdateWorkspaceSettings(ctx, w.caller, commands.UpdateWorkspaceSettings{WorkspaceID: w.ws,
			Patch: identity.SettingsPatch{MessagesPerMinute: &messagesPerMinute}}); err != nil {
			return nil, err
		}
	}
	if err := app.Runner.WaitFor(ctx, last); err != nil {
		return nil, err
	}
	acct, _, err := cmds.ConnectWhatsAppAccount(ctx, w.caller, commands.ConnectWhatsAppAccount{WorkspaceID: w.ws, Label: "Sales line"})
	if err != nil {
		return nil, fmt.Errorf("connecting the simulated number: %w", err)
	}
	w.account = acct.AccountID
	for {
		a, err := app.Resolver.WhatsAppAccounts.AccountByID(ctx, w.account)
		if err == nil && a.Status == whatsapp.StatusConnected {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	g, last, err := cmds.CreateContactGroup(ctx, w.caller, commands.CreateContactGroup{WorkspaceID: w.ws, Name: "Customers"})
	if err != nil {
		return nil, err
	}
	w.group = g.GroupID
	if err := app.Runner.WaitFor(ctx, last); err != nil {
		return nil, err
	}
	var file bytes.Buffer
	file.WriteString("Name,Mobile Phone,City\n")
	cities := []string{"Berlin", "Hamburg", "Munich", "Cologne", "Leipzig"}
	for i := range n {
		fmt.Fprintf(&file, "%s %s,0171 %07d,%s\n", benchFirst[i%len(benchFirst)], benchLast[(i/len(benchFirst))%len(benchLast)], i, cities[i%len(cities)])
	}
	importID, err := benchUpload(ctx, base, w.token, w.ws, file.Bytes(), w.group)
	if err != nil {
		return nil, err
	}
	for {
		imp, err := app.Resolver.Contacts.ImportByID(ctx, importID)
		if err == nil && imp.Status != contact.StatusRunning {
			if imp.Status != contact.StatusCompleted {
				return nil, fmt.Errorf("the import ended %s", imp.Status)
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	t, last, err := cmds.CreateTemplate(ctx, w.caller, commands.CreateTemplate{WorkspaceID: w.ws, Name: "Spring offer",
		Body: "Hi {{first_name|there}}, 20% off this week in our {{custom.city|local}} shop!"})
	if err != nil {
		return nil, err
	}
	w.template = t.TemplateID
	return w, app.Runner.WaitFor(ctx, last)
}

// launch creates and launches a campaign to the whole group.
func (w *demoWorld) launch(ctx context.Context, name string) (uuid.UUID, error) {
	cmds := w.app.Resolver.Commands
	c, _, err := cmds.CreateCampaign(ctx, w.caller, commands.CreateCampaign{WorkspaceID: w.ws, Input: campaign.CampaignInput{Name: name,
		TemplateID: w.template, AccountID: w.account, Audience: campaign.Audience{ContactGroupIDs: []uuid.UUID{w.group}}}})
	if err != nil {
		return uuid.Nil, err
	}
	_, last, err := cmds.LaunchCampaign(ctx, w.caller, commands.CampaignCommand{WorkspaceID: w.ws, CampaignID: c.CampaignID})
	if err != nil {
		return uuid.Nil, err
	}
	return c.CampaignID, w.app.Runner.WaitFor(ctx, last)
}
