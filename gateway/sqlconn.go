package gateway

import (
	"context"
	"database/sql"
	"sync"
)

// sqlDB is a *sql.DB with an optional cache of prepared statements keyed
// by SQL text. modernc.org/sqlite otherwise compiles every statement on
// every call (a measurable share of the gateway's CPU); with a cached
// *sql.Stmt the compiled statement is kept per connection and reused.
// PostgreSQL does not use the cache: pgx's stdlib driver already prepares
// and caches statements per connection.
type sqlDB struct {
	db    *sql.DB
	cache bool

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

// maxCachedStmts bounds the cache; the gateway's SQL is a fixed set of
// strings (plus a few filter combinations), far below it.
const maxCachedStmts = 512

func newSQLDB(db *sql.DB, cache bool) *sqlDB {
	return &sqlDB{db: db, cache: cache, stmts: map[string]*sql.Stmt{}}
}

// cached returns the prepared statement for query, or nil.
func (h *sqlDB) cached(query string) *sql.Stmt {
	if !h.cache {
		return nil
	}
	h.mu.RLock()
	st := h.stmts[query]
	h.mu.RUnlock()
	return st
}

// stmt returns the prepared statement for query, preparing it on a miss.
// It takes a connection of h's pool, so it must not be called while the
// caller holds one in a transaction (the writer has a single connection).
func (h *sqlDB) stmt(ctx context.Context, query string) *sql.Stmt {
	if !h.cache {
		return nil
	}
	if st := h.cached(query); st != nil {
		return st
	}
	h.mu.RLock()
	full := len(h.stmts) >= maxCachedStmts
	h.mu.RUnlock()
	if full {
		return nil
	}
	// Prepared without holding mu: preparing waits for a connection, and
	// the holder of the writer's connection may need mu meanwhile.
	st, err := h.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // run it unprepared: the error shows there
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if prev := h.stmts[query]; prev != nil {
		st.Close() // another goroutine prepared it meanwhile
		return prev
	}
	h.stmts[query] = st
	return st
}

func (h *sqlDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := h.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return h.db.ExecContext(ctx, query, args...)
}

func (h *sqlDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := h.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return h.db.QueryContext(ctx, query, args...)
}

func (h *sqlDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := h.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return h.db.QueryRowContext(ctx, query, args...)
}

// Close closes the cached statements and the database.
func (h *sqlDB) Close() error {
	h.mu.Lock()
	for q, st := range h.stmts {
		st.Close()
		delete(h.stmts, q)
	}
	h.mu.Unlock()
	return h.db.Close()
}

// tx runs fn in a transaction on h and commits it when fn succeeds.
// Statements not yet in the cache run unprepared inside the transaction
// and are prepared after it ends, when the connection is free again.
func (h *sqlDB) tx(ctx context.Context, fn func(*sqlTx) error) error {
	t, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	tx := &sqlTx{tx: t, h: h}
	if err := fn(tx); err != nil {
		t.Rollback() //nolint:errcheck // the fn error matters
		tx.prepareMisses(ctx)
		return err
	}
	err = t.Commit()
	tx.prepareMisses(ctx)
	return err
}

// sqlTx is a transaction on a sqlDB, using its cached statements.
type sqlTx struct {
	tx     *sql.Tx
	h      *sqlDB
	misses []string
}

func (t *sqlTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if !t.h.cache {
		return nil
	}
	if st := t.h.cached(query); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	t.misses = append(t.misses, query)
	return nil
}

func (t *sqlTx) prepareMisses(ctx context.Context) {
	for _, q := range t.misses {
		t.h.stmt(context.WithoutCancel(ctx), q)
	}
	t.misses = nil
}

func (t *sqlTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *sqlTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *sqlTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// collect reads every row of a query's result with scan. rows and err are
// what QueryContext returned; rows is closed.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
