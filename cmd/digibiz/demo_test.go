package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// `digibiz demo` runs a campaign on the simulator to the end and prints the funnel.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := cmdDemo(ctx, []string{"--database-url", pgtest.NewDatabase(t), "--data-dir", t.TempDir(), "--contacts", "25",
		"--sim-read-delay", "100ms", "--sim-deliver-delay", "50ms"}, &out)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "[########################################] 100.0%  25/25")
	require.Contains(t, out.String(), "Campaign completed after")
	require.Regexp(t, `recipients +25\n  sent +25\n  delivered +25\n  read +25\n  failed +0\n  skipped +0`, out.String())
}
