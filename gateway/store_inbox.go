package gateway

import (
	"context"
	"database/sql"
	"time"
)

// --- webhook inbox ---

func (s *sqlStore) AddInbox(ctx context.Context, e InboxEntry) error {
	_, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO webhook_inbox (body_sha256, upstream_id, type, body, received_at, signed_at) "+
		"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (body_sha256) DO NOTHING"),
		e.Hash, e.UpstreamID, e.Type, string(e.Body), e.ReceivedAt.UnixMilli(), ntime(e.SignedAt))
	return err
}

func (s *sqlStore) Inbox(ctx context.Context, upstreamID string) ([]InboxEntry, error) {
	// A reader sees every write committed before the query starts (WAL
	// snapshot per statement; PostgreSQL read committed), which is all
	// the inbox's handshake needs (see Gateway.drainInbox).
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT body_sha256, upstream_id, type, body, received_at, signed_at FROM webhook_inbox "+
		"WHERE upstream_id = ? ORDER BY received_at, body_sha256"), upstreamID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InboxEntry
	for rows.Next() {
		var e InboxEntry
		var body string
		var at int64
		var signed sql.NullInt64
		if err := rows.Scan(&e.Hash, &e.UpstreamID, &e.Type, &body, &at, &signed); err != nil {
			return nil, err
		}
		e.Body, e.ReceivedAt, e.SignedAt = []byte(body), time.UnixMilli(at).UTC(), fromMilli(signed)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *sqlStore) DeleteInbox(ctx context.Context, hash string) error {
	_, err := s.w.ExecContext(ctx, s.d.q("DELETE FROM webhook_inbox WHERE body_sha256 = ?"), hash)
	return err
}

func (s *sqlStore) CleanupInbox(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, s.d.q("DELETE FROM webhook_inbox WHERE received_at < ?"), before.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
