package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// DefaultFeedRetention is how long messages of EventsTopic, and the offsets of live consumer
// groups that stopped beating, are kept.
const DefaultFeedRetention = time.Hour

// JanitorOpts configures a Janitor. Bus is required.
type JanitorOpts struct {
	Bus *Bus
	// Retention is how long feed messages and silent live consumer groups are kept. Default 1h.
	Retention time.Duration
	// Interval is how often Run cleans. Default Retention/6.
	Interval time.Duration
	Logger   *slog.Logger
}

// Janitor keeps the live feed's tables from growing without bound. EventsTopic is a live topic,
// not an archive (the event log is the archive), so its messages are deleted once older than the
// retention. Live consumer groups (one per Feed, named LiveGroupPrefix + random) are created by
// every process start; the Feed adds a seen_at column to watermill's offsets table and touches
// its row every heartbeat, and a live group's row whose seen_at is older than the retention
// belongs to a process that is gone and is deleted. Every process may run a janitor; they do not
// get in each other's way.
//
// Durable consumer groups (any other name) are never deleted, and a message that a durable
// group has not consumed yet is kept whatever its age, so a reactor that was down for a while
// resumes where it stopped.
type Janitor struct {
	bus       *Bus
	retention time.Duration
	interval  time.Duration
	logger    *slog.Logger
}

// NewJanitor returns a janitor; Run starts it, Clean cleans once.
func NewJanitor(opts JanitorOpts) (*Janitor, error) {
	if opts.Bus == nil {
		return nil, errors.New("messaging: janitor needs a bus")
	}
	j := &Janitor{bus: opts.Bus, retention: opts.Retention, interval: opts.Interval, logger: opts.Logger}
	if j.retention <= 0 {
		j.retention = DefaultFeedRetention
	}
	if j.interval <= 0 {
		j.interval = j.retention / 6
	}
	if j.logger == nil {
		j.logger = slog.Default()
	}
	j.logger = j.logger.With("component", "live_feed_janitor")
	return j, nil
}

// Run cleans at once and then every interval, until ctx ends.
func (j *Janitor) Run(ctx context.Context) error {
	for {
		msgs, groups, err := j.Clean(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			j.logger.Warn("cleaning the live feed", "err", err)
		} else if msgs > 0 || groups > 0 {
			j.logger.Debug("cleaned the live feed", "messages", msgs, "consumer_groups", groups)
		}
		if !eventstore.Sleep(ctx, j.interval, nil) {
			return nil
		}
	}
}

// cleanBatch bounds each delete, so that a large backlog is removed in short transactions.
const cleanBatch = 5000

// Clean deletes the offsets of silent live consumer groups and the feed messages older than the
// retention. It returns how many messages and groups it deleted.
func (j *Janitor) Clean(ctx context.Context) (messages, groups int64, err error) {
	offsets := j.bus.offsets.MessagesOffsetsTable(EventsTopic)
	msgs := j.bus.schema.MessagesTable(EventsTopic)
	secs := j.retention.Seconds()
	tag, err := j.bus.pool.Exec(ctx, `DELETE FROM `+offsets+`
		WHERE starts_with(consumer_group, $1) AND seen_at < now() - make_interval(secs => $2)`,
		LiveGroupPrefix, secs)
	if err != nil {
		return 0, 0, fmt.Errorf("deleting silent live consumer groups: %w", err)
	}
	groups = tag.RowsAffected()
	// created_at is a timestamp without time zone set from CURRENT_TIMESTAMP, so it is compared with
	// LOCALTIMESTAMP, which uses the same session time zone.
	for {
		tag, err := j.bus.pool.Exec(ctx, `DELETE FROM `+msgs+` WHERE ctid = ANY (ARRAY(
			SELECT m.ctid FROM `+msgs+` m
			WHERE m.created_at < LOCALTIMESTAMP - make_interval(secs => $1)
			AND NOT EXISTS (SELECT 1 FROM `+offsets+` o
				WHERE NOT starts_with(o.consumer_group, $2)
				AND (o.last_processed_transaction_id, o.offset_acked) < (m.transaction_id, m."offset"))
			LIMIT $3))`, secs, LiveGroupPrefix, cleanBatch)
		if err != nil {
			return messages, groups, fmt.Errorf("deleting old live feed messages: %w", err)
		}
		messages += tag.RowsAffected()
		if tag.RowsAffected() < cleanBatch {
			return messages, groups, nil
		}
	}
}

// ensureSeenColumn adds the liveness column the Feed and the Janitor use to watermill's offsets
// table of EventsTopic. watermill names its columns in every statement, so an extra column with
// a default does not disturb it. The catalog is checked first because ALTER TABLE locks the table
// even when the column exists.
func ensureSeenColumn(ctx context.Context, b *Bus) error {
	table := b.offsets.MessagesOffsetsTable(EventsTopic)
	var exists bool
	if err := b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'seen_at')`,
		strings.Trim(table, `"`)).Scan(&exists); err != nil {
		return fmt.Errorf("checking %s for seen_at: %w", table, err)
	}
	if exists {
		return nil
	}
	if _, err := b.pool.Exec(ctx, `ALTER TABLE `+table+` ADD COLUMN IF NOT EXISTS seen_at timestamptz NOT NULL DEFAULT now()`); err != nil {
		return fmt.Errorf("adding seen_at to %s: %w", table, err)
	}
	return nil
}
