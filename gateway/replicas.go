package gateway

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// Replicas cooperate through PostgreSQL only (SQLite is one machine: none
// of this runs there, and the in-process limiter and timers stay):
//
//   - Wake-ups: triggers on jobs, callbacks and events call pg_notify in
//     the transaction that changes the row, so the notification is
//     delivered at commit, never for a change that rolled back. Each
//     replica LISTENs on one connection and nudges its dispatcher,
//     callback sender and SSE streams. Polling (IdlePoll, SSEPoll) stays
//     as the fallback; after a reconnect everything is nudged once, for
//     what may have been missed.
//   - Maintenance (retention, inbox TTL) runs on the replica holding a
//     session advisory lock on a dedicated connection: once per interval
//     across replicas; when that replica dies its session ends, the lock
//     frees and the next replica to try takes over.
//   - The upstream rate limit is one token bucket row refilled on the
//     database's clock (see pgLimiter).
//   - Each replica upserts a heartbeat row (GET /api/admin/replicas, the
//     dashboard's overview).

// postgresDB returns the store's database when it is PostgreSQL.
func (s *sqlStore) postgresDB() *sql.DB {
	if s.d.name != "postgres" {
		return nil
	}
	return s.w.db
}

// pgOf returns the PostgreSQL database behind a Store, or nil.
func pgOf(s Store) *sql.DB {
	if p, ok := s.(interface{ postgresDB() *sql.DB }); ok {
		return p.postgresDB()
	}
	return nil
}

const (
	maintenanceLockKey = 7244032 // migrations use 7244031
	notifyPrefix       = "hourglass."
)

// nowMillisSQL is the database clock in Unix milliseconds.
const nowMillisSQL = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

// notifySQL installs the notify triggers (idempotent). A job or callback
// notifies only when it becomes claimable now (lease free, due within a
// second): saves that schedule later work or hold a lease stay quiet.
// The channel is per schema, so databases shared by schemas (tests) do
// not wake each other.
var notifySQL = strings.NewReplacer("{{now}}", nowMillisSQL).Replace(`
CREATE OR REPLACE FUNCTION hourglass_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_TABLE_NAME = 'events' THEN
		PERFORM pg_notify('` + notifyPrefix + `' || TG_TABLE_SCHEMA, 'ev:' || NEW.job_id);
	ELSE
		PERFORM pg_notify('` + notifyPrefix + `' || TG_TABLE_SCHEMA, TG_TABLE_NAME);
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER hourglass_notify_jobs AFTER INSERT OR UPDATE ON jobs FOR EACH ROW
	WHEN (NEW.next_run_at IS NOT NULL AND NEW.lease_owner IS NULL AND NEW.next_run_at <= {{now}} + 1000)
	EXECUTE FUNCTION hourglass_notify();
CREATE OR REPLACE TRIGGER hourglass_notify_callbacks AFTER INSERT OR UPDATE ON callbacks FOR EACH ROW
	WHEN (NEW.next_run_at IS NOT NULL AND NEW.lease_owner IS NULL AND NEW.next_run_at <= {{now}} + 1000)
	EXECUTE FUNCTION hourglass_notify();
CREATE OR REPLACE TRIGGER hourglass_notify_events AFTER INSERT ON events FOR EACH ROW
	EXECUTE FUNCTION hourglass_notify();
CREATE TABLE IF NOT EXISTS replicas (
	id           TEXT PRIMARY KEY,
	host         TEXT NOT NULL,
	pid          INTEGER NOT NULL,
	started_at   BIGINT NOT NULL,
	heartbeat_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_buckets (
	name       TEXT PRIMARY KEY,
	tokens     DOUBLE PRECISION NOT NULL,
	updated_at BIGINT NOT NULL
);
`)

// cluster is a gateway's link to the other replicas.
type cluster struct {
	g  *Gateway
	db *sql.DB // nil: SQLite, nothing shared

	mu      sync.Mutex
	streams map[string]map[chan struct{}]struct{} // job id -> SSE streams

	leader *sql.Conn // holds the maintenance lock; nil when not leader
}

func newCluster(g *Gateway) *cluster {
	return &cluster{g: g, db: pgOf(g.store), streams: map[string]map[chan struct{}]struct{}{}}
}

// setup installs the triggers and tables (under the migrations' advisory
// lock, so replicas starting together do it once).
func (c *cluster) setup(ctx context.Context) error {
	if c.db == nil {
		return nil
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7244031)"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, notifySQL); err != nil {
		return fmt.Errorf("gateway: install notify triggers: %w", err)
	}
	return tx.Commit()
}

// start runs the listener and the heartbeat until ctx ends.
func (c *cluster) start(ctx context.Context, wg *sync.WaitGroup) {
	if c.db == nil {
		return
	}
	wg.Add(2)
	go func() { defer wg.Done(); c.listen(ctx) }()
	go func() { defer wg.Done(); c.heartbeats(ctx) }()
}

// listen keeps one LISTEN connection, reconnecting with a pause.
func (c *cluster) listen(ctx context.Context) {
	for {
		err := c.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		c.g.log.Warn("gateway: LISTEN connection lost; polling meanwhile", "err", err)
		if c.g.sleep(ctx, time.Second) != nil {
			return
		}
	}
}

func (c *cluster) listenOnce(ctx context.Context) error {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var schema string
	if err := conn.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return err
	}
	channel := notifyPrefix + schema
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("gateway: LISTEN needs pgx, got %T", dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, `LISTEN "`+strings.ReplaceAll(channel, `"`, `""`)+`"`); err != nil {
			return err
		}
		c.wakeAll() // anything missed while not listening
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The connection is mid-wait or broken: never reuse it.
				return errors.Join(err, driver.ErrBadConn)
			}
			c.dispatch(n.Payload)
		}
	})
}

func (c *cluster) dispatch(payload string) {
	switch {
	case payload == "jobs":
		c.g.nudge()
	case payload == "callbacks":
		c.g.nudgeCallbacks()
	case strings.HasPrefix(payload, "ev:"):
		c.wakeStreams(payload[3:])
	}
}

func (c *cluster) wakeAll() {
	c.g.nudge()
	c.g.nudgeCallbacks()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, subs := range c.streams {
		for ch := range subs {
			signal(ch)
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// subscribe returns a channel signaled when job id gets events (always
// nil on SQLite: streams poll), and its cancel.
func (c *cluster) subscribe(id string) (<-chan struct{}, func()) {
	if c.db == nil {
		return nil, func() {}
	}
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.streams[id] == nil {
		c.streams[id] = map[chan struct{}]struct{}{}
	}
	c.streams[id][ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.streams[id], ch)
		if len(c.streams[id]) == 0 {
			delete(c.streams, id)
		}
		c.mu.Unlock()
	}
}

func (c *cluster) wakeStreams(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.streams[id] {
		signal(ch)
	}
}

// heartbeatEvery is how often a replica refreshes its row; a replica is
// shown alive while its row is younger than three periods.
const heartbeatEvery = 5 * time.Second

func (c *cluster) heartbeats(ctx context.Context) {
	host, _ := os.Hostname()
	started := c.g.now().UnixMilli()
	beat := func() {
		_, err := c.db.ExecContext(ctx, `INSERT INTO replicas (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, `+nowMillisSQL+`)
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at`, c.g.replica, host, os.Getpid(), started)
		if err != nil && ctx.Err() == nil {
			c.g.log.Warn("gateway: replica heartbeat", "err", err)
		}
	}
	beat()
	t := c.g.clock.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = c.db.ExecContext(dctx, "DELETE FROM replicas WHERE id = $1", c.g.replica)
			cancel()
			c.releaseLeader()
			return
		case <-t.Chan():
			beat()
		}
	}
}

// Replica is one gateway process sharing the database.
type Replica struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	Alive       bool      `json:"alive"`
	Self        bool      `json:"self"`
}

// Replicas lists the replicas that sent a heartbeat in the last hour
// (nil on SQLite: one process, no heartbeat rows). Alive: within three
// heartbeat periods, by the database's clock.
func (g *Gateway) Replicas(ctx context.Context) ([]Replica, error) {
	if g.cluster.db == nil {
		return []Replica{{ID: g.replica, Host: hostname(), PID: os.Getpid(), Alive: true, Self: true, HeartbeatAt: g.now()}}, nil
	}
	rows, err := g.cluster.db.QueryContext(ctx, `SELECT id, host, pid, started_at, heartbeat_at, heartbeat_at > `+nowMillisSQL+` - $1
		FROM replicas WHERE heartbeat_at > `+nowMillisSQL+` - 3600000 ORDER BY started_at, id`, (3 * heartbeatEvery).Milliseconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		var started, beat int64
		if err := rows.Scan(&r.ID, &r.Host, &r.PID, &started, &beat, &r.Alive); err != nil {
			return nil, err
		}
		r.StartedAt, r.HeartbeatAt = time.UnixMilli(started).UTC(), time.UnixMilli(beat).UTC()
		r.Self = r.ID == g.replica
		out = append(out, r)
	}
	return out, rows.Err()
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// leadMaintenance reports whether this replica runs maintenance now: on
// SQLite always; on PostgreSQL when it holds (or just took) the session
// advisory lock. The lock lives on a connection kept for it, so it is
// held from one interval to the next and freed when the process dies.
func (c *cluster) leadMaintenance(ctx context.Context) bool {
	if c.db == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader != nil {
		if err := c.leader.PingContext(ctx); err == nil {
			return true
		}
		c.leader.Close() // lost with its session
		c.leader = nil
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return false
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", maintenanceLockKey).Scan(&got); err != nil || !got {
		conn.Close()
		return false
	}
	c.leader = conn
	c.g.log.Info("gateway: this replica runs maintenance (retention, inbox clean-up)")
	return true
}

func (c *cluster) releaseLeader() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = c.leader.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", maintenanceLockKey)
	c.leader.Close()
	c.leader = nil
}

// pgLimiter is the upstream rate limit shared by every replica: one row
// (rate_buckets) holding a token count and the time it was computed, on
// the database's clock. Taking a token is one UPDATE: refill by the time
// elapsed (capped at the burst), take one, and return the new count; a
// negative count is a reservation, and the caller waits -tokens/rps before
// sending (like x/time/rate's Wait). Chosen over "rps divided by the live
// replicas" because it is exact whatever the membership: a replica that
// joins, dies or carries all the load never makes the sum exceed the rate,
// and an idle replica's share is not wasted. The cost is one row update
// per upstream call, nothing at Magic Hour's rates (10/s).
type pgLimiter struct {
	db    *sql.DB
	name  string
	rps   float64
	burst float64
}

func (l *pgLimiter) Wait(ctx context.Context) error {
	var tokens float64
	err := l.db.QueryRowContext(ctx, `INSERT INTO rate_buckets AS b (name, tokens, updated_at) VALUES ($1, $2::float8 - 1, `+nowMillisSQL+`)
		ON CONFLICT (name) DO UPDATE SET
			tokens = LEAST($2::float8, b.tokens + GREATEST(0, EXCLUDED.updated_at - b.updated_at) * $3::float8 / 1000.0) - 1,
			updated_at = GREATEST(b.updated_at, EXCLUDED.updated_at)
		RETURNING tokens`, l.name, l.burst, l.rps).Scan(&tokens)
	if err != nil {
		return fmt.Errorf("gateway: shared rate limit: %w", err)
	}
	if tokens >= 0 {
		return nil
	}
	wait := time.Duration(-tokens / l.rps * float64(time.Second))
	if wait > time.Duration(math.MaxInt32)*time.Millisecond {
		wait = time.Hour
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (g *Gateway) handleReplicas(w http.ResponseWriter, r *http.Request, _ caller) {
	rs, err := g.Replicas(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replicas": rs})
}
