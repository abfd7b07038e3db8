package main

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// TestCampaignSurvivesKills runs a 5,000-recipient campaign in a real server process and
// SIGKILLs it at random moments while it sends (at least five times), starting it again each
// time: the simulated WhatsApp's own record shows every recipient messaged exactly once, and the
// campaign completes with every recipient accounted for.
func TestCampaignSurvivesKills(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a 5,000-recipient campaign in a real process killed five times")
	}
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("DIGIBIZ_CRASH_RECIPIENTS")); err == nil {
		n = v // a smaller campaign, for debugging
	}
	bin := buildBinary(t)
	db, key, dataDir := pgtest.NewDatabase(t), newMasterKey(t), t.TempDir()
	// WhatsApp takes 20 ms to accept each message, so that the campaign is still sending when
	// the kills come.
	env := []string{"DIGIBIZ_SIM_UNTHROTTLED=true", "DIGIBIZ_SIM_SEND_DELAY=20ms", "DIGIBIZ_SIM_DELIVER_DELAY=-1s", "DIGIBIZ_SIM_READ_DELAY=-1s"}
	proc, s := startProcess(t, bin, db, dataDir, key, env...)
	w := newCampaignWorld(t, s, n, "kills@example.com")
	c := w.create(t, nil)
	w.launch(t, c.ID)

	kills := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for kills < 5 {
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		st := s.campaign(w.tok, c.ID)
		if st.Status == "COMPLETED" {
			break
		}
		require.Equal(t, "RUNNING", st.Status, "%+v", st)
		require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
		_ = proc.Wait()
		kills++
		proc, s = startProcess(t, bin, db, dataDir, key, env...)
		w.s = s
	}
	require.GreaterOrEqual(t, kills, 5, "the campaign ended before five kills; slow it down")
	done := s.waitCampaign(w.tok, c.ID, 5*time.Minute, "COMPLETED")
	require.Equal(t, campaignStatsJSON{Total: n, Sent: n, Progress: 1}, done.Stats)

	conn, err := pgx.Connect(context.Background(), db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var accepted, recipients, ids int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT recipient), count(DISTINCT message_id)
		FROM simulator_messages`).Scan(&accepted, &recipients, &ids))
	require.Equal(t, n, accepted, "messages the simulated WhatsApp accepted")
	require.Equal(t, n, recipients, "recipients messaged")
	require.Equal(t, n, ids)
	// Our log: one intent and one outcome per recipient, however often it was sent.
	var queued, sent int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE event_type = 'contact.message_queued'),
		count(*) FILTER (WHERE event_type = 'contact.message_sent') FROM events`).Scan(&queued, &sent))
	require.Equal(t, n, queued)
	require.Equal(t, n, sent)
	t.Logf("%d kills", kills)
}
