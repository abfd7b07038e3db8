package accesslog

import (
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

func TestListPagesNewestFirstWithoutDuplicatesOrGaps(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	w := NewWriter(pool, WriterOpts{})
	wsA, wsB := uuid.New(), uuid.New()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// Pairs of entries share a timestamp, so only the id tells them apart.
	for i := range 25 {
		w.Record(sampleEntry(wsA, 1, i, base.Add(-time.Duration(i/2)*time.Minute)))
		if i < 5 {
			w.Record(sampleEntry(wsB, 2, i, base.Add(time.Hour)))
		}
	}
	require.NoError(t, w.Flush(ctx))

	q := Query{Pool: pool}
	n, err := q.Count(ctx, wsA)
	require.NoError(t, err)
	require.Equal(t, 25, n)

	// The expected order, worked out here: newest first, then the higher id first.
	first, _, err := q.List(ctx, wsA, MaxPage, nil)
	require.NoError(t, err)
	want := slices.Clone(first)
	slices.SortFunc(want, func(a, b StoredEntry) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return int(b.ID - a.ID)
	})
	require.Len(t, want, 25)
	for _, e := range want {
		require.Equal(t, wsA, e.WorkspaceID, "another workspace's entry listed")
	}

	var (
		got    []StoredEntry
		after  *Cursor
		pages  int
		insert = true
	)
	for {
		page, hasNext, err := q.List(ctx, wsA, 7, after)
		require.NoError(t, err)
		pages++
		got = append(got, page...)
		if !hasNext {
			require.NotEmpty(t, page)
			break
		}
		require.Len(t, page, 7)
		// The client round-trips the opaque cursor.
		c, err := DecodeCursor(page[len(page)-1].Cursor().Encode())
		require.NoError(t, err)
		after = &c
		if insert {
			// Requests logged while a client pages must not shift the pages behind it.
			for i := range 3 {
				w.Record(sampleEntry(wsA, 3, i, base.Add(24*time.Hour)))
			}
			require.NoError(t, w.Flush(ctx))
			insert = false
		}
	}
	require.Equal(t, 4, pages)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("paged entries (-want +got):\n%s", diff)
	}

	n, err = q.Count(ctx, wsA)
	require.NoError(t, err)
	require.Equal(t, 28, n)
	n, err = q.Count(ctx, uuid.New())
	require.NoError(t, err)
	require.Equal(t, 0, n)
}

func TestListRejectsBadInput(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	q := Query{Pool: pool}

	_, _, err := q.List(ctx, uuid.New(), -1, nil)
	require.Error(t, err)
	page, _, err := q.List(ctx, uuid.New(), 0, nil) // first: 0 asks for no entries, which is fine
	require.NoError(t, err)
	require.Empty(t, page)
	_, _, err = q.List(ctx, uuid.New(), MaxPage+1, nil)
	require.Error(t, err)

	for _, bad := range []string{
		"",
		"not base64!",
		base64.RawURLEncoding.EncodeToString([]byte("offset:10")),
		base64.RawURLEncoding.EncodeToString([]byte("al1:123")),
		base64.RawURLEncoding.EncodeToString([]byte("al1:abc:5")),
		base64.RawURLEncoding.EncodeToString([]byte("al1:123:0")),
		base64.RawURLEncoding.EncodeToString([]byte("al1:123:x")),
	} {
		_, err := DecodeCursor(bad)
		require.Error(t, err, "cursor %q", bad)
		require.True(t, errors.Is(err, ErrBadCursor), "cursor %q: %v", bad, err)
	}

	c := Cursor{At: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), ID: 42}
	back, err := DecodeCursor(c.Encode())
	require.NoError(t, err)
	require.True(t, c.At.Equal(back.At))
	require.Equal(t, c.ID, back.ID)
}
