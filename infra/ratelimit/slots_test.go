package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSlotsBoundEachKeyAndTheTotal(t *testing.T) {
	t.Parallel()
	s := NewSlots(2, 3)
	r1, ok := s.TryAcquire("a")
	require.True(t, ok)
	r2, ok := s.TryAcquire("a")
	require.True(t, ok)
	_, ok = s.TryAcquire("a")
	require.False(t, ok, "a holds its two")
	r3, ok := s.TryAcquire("b")
	require.True(t, ok)
	_, ok = s.TryAcquire("c")
	require.False(t, ok, "three held in all")
	r1()
	r1() // a second release changes nothing
	require.Equal(t, 1, s.Held("a"))
	r4, ok := s.TryAcquire("c")
	require.True(t, ok)
	r2()
	r3()
	r4()
	require.Equal(t, 0, s.Total())
	require.Empty(t, s.keys, "no state kept for idle keys")
}

// A key's waiters wait behind that key's holders only: another key gets its slot at once.
func TestSlotsOneKeyWaitsOnItself(t *testing.T) {
	t.Parallel()
	s := NewSlots(1, 0)
	ctx := context.Background()
	rel, err := s.Acquire(ctx, "busy")
	require.NoError(t, err)
	waiting := make(chan func())
	go func() {
		r, err := s.Acquire(ctx, "busy")
		if err == nil {
			waiting <- r
		}
	}()
	other, err := s.Acquire(ctx, "idle")
	require.NoError(t, err, "another key is not held back")
	other()
	select {
	case <-waiting:
		t.Fatal("the busy key got a second slot")
	default:
	}
	rel()
	(<-waiting)()
	require.Equal(t, 0, s.Total())
}

func TestSlotsAcquireEndsWithItsContext(t *testing.T) {
	t.Parallel()
	s := NewSlots(1, 0)
	rel, err := s.Acquire(context.Background(), "k")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.Acquire(ctx, "k")
		done <- err
	}()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	rel()
	require.Equal(t, 0, s.Total())
	require.Empty(t, s.keys)
}

// Under contention no key ever holds more than its bound, nor all keys more than the total,
// and every waiter is served.
func TestSlotsHoldUnderContention(t *testing.T) {
	t.Parallel()
	s := NewSlots(2, 5)
	var maxTotal, maxA atomic.Int64
	var holdA, holdAll atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := []string{"a", "b", "c", "d"}[i%4]
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rel, err := s.Acquire(ctx, key)
			if err != nil {
				t.Error(err)
				return
			}
			n := holdAll.Add(1)
			for m := maxTotal.Load(); n > m && !maxTotal.CompareAndSwap(m, n); m = maxTotal.Load() {
			}
			if key == "a" {
				n := holdA.Add(1)
				for m := maxA.Load(); n > m && !maxA.CompareAndSwap(m, n); m = maxA.Load() {
				}
				holdA.Add(-1)
			}
			holdAll.Add(-1)
			rel()
		}(i)
	}
	wg.Wait()
	require.LessOrEqual(t, maxA.Load(), int64(2))
	require.LessOrEqual(t, maxTotal.Load(), int64(5))
	require.Equal(t, 0, s.Total())
	require.Empty(t, s.keys)
}
