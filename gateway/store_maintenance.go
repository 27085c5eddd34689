package gateway

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"time"
)

// --- keys, metrics, retention ---

func (s *sqlStore) URLSigningKey(ctx context.Context) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if _, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"),
		"url_signing_key", hex.EncodeToString(b)); err != nil {
		return nil, err
	}
	var v string
	if err := s.r.QueryRowContext(ctx, s.d.q("SELECT v FROM meta WHERE k = ?"), "url_signing_key").Scan(&v); err != nil {
		return nil, err
	}
	return hex.DecodeString(v)
}

func (s *sqlStore) CountJobsByStatus(ctx context.Context) (map[Status]int64, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT status, COUNT(*) FROM jobs GROUP BY status")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[Status]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[Status(st)] = n
	}
	return out, rows.Err()
}

func (s *sqlStore) StorageBytes(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.r.QueryRowContext(ctx, "SELECT SUM(size) FROM outputs WHERE storage_key IS NOT NULL AND stored_at IS NOT NULL").Scan(&n)
	return n.Int64, err
}

func (s *sqlStore) Cleanup(ctx context.Context, before time.Time) (int64, error) {
	b := before.UnixMilli()
	finished := "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?"
	var total int64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"DELETE FROM webhook_deliveries WHERE received_at < ?", []any{b}},
		{"DELETE FROM events WHERE created_at < ? AND job_id IN (" + finished + ")", []any{b, b}},
		{"DELETE FROM callback_attempts WHERE created_at < ? AND callback_id IN (SELECT id FROM callbacks WHERE next_run_at IS NULL)", []any{b}},
		{"DELETE FROM callbacks WHERE created_at < ? AND next_run_at IS NULL AND id NOT IN (SELECT callback_id FROM callback_attempts)", []any{b}},
	} {
		res, err := s.w.ExecContext(ctx, s.d.q(q.sql), q.args...)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
