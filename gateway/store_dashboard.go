package gateway

// Read queries for the dashboard, on the SQL store (both dialects).

import (
	"context"
	"strings"
	"time"
)

const dashboardSecretKey = "dashboard_session_secret"

func (s *sqlStore) dashboardSecret(ctx context.Context) (string, error) {
	if _, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"),
		dashboardSecretKey, randomToken(32)); err != nil {
		return "", err
	}
	var v string
	err := s.r.QueryRowContext(ctx, s.d.q("SELECT v FROM meta WHERE k = ?"), dashboardSecretKey).Scan(&v)
	return v, err
}

func (s *sqlStore) queryJobs(ctx context.Context, q string, args ...any) ([]*Job, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(q), args...)
	return collect(rows, err, scanJob)
}

func (s *sqlStore) jobsChangedSince(ctx context.Context, f JobFilter, since time.Time, limit int) ([]*Job, error) {
	where, args := []string{"updated_at >= ?"}, []any{since.UnixMilli()}
	if f.TenantID != "" {
		where, args = append(where, "tenant_id = ?"), append(args, f.TenantID)
	}
	if f.Tool != "" {
		where, args = append(where, "tool = ?"), append(args, f.Tool)
	}
	if limit <= 0 {
		limit = 200
	}
	args = append(args, limit)
	return s.queryJobs(ctx, "SELECT "+jobCols+" FROM jobs WHERE "+strings.Join(where, " AND ")+
		" ORDER BY updated_at, id LIMIT ?", args...)
}

func (s *sqlStore) jobCounts(ctx context.Context, tenantID string) (map[Status]int, error) {
	q, args := "SELECT status, COUNT(*) FROM jobs", []any{}
	if tenantID != "" {
		q, args = q+" WHERE tenant_id = ?", append(args, tenantID)
	}
	rows, err := s.r.QueryContext(ctx, s.d.q(q+" GROUP BY status"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[Status]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[Status(st)] = n
	}
	return out, rows.Err()
}

func (s *sqlStore) finishedByHour(ctx context.Context, tenantID string, since time.Time) ([]HourBucket, error) {
	q := "SELECT finished_at / 3600000 AS h, COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), " +
		"SUM(CASE WHEN status = 'error' AND error_code IN ('" + strings.Join(UpstreamErrorCodes, "','") + "') THEN 1 ELSE 0 END) " +
		"FROM jobs WHERE finished_at IS NOT NULL AND finished_at >= ?"
	args := []any{since.UnixMilli()}
	if tenantID != "" {
		q, args = q+" AND tenant_id = ?", append(args, tenantID)
	}
	rows, err := s.r.QueryContext(ctx, s.d.q(q+" GROUP BY finished_at / 3600000 ORDER BY 1"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HourBucket
	for rows.Next() {
		var h int64
		var b HourBucket
		if err := rows.Scan(&h, &b.Finished, &b.Failed, &b.UpstreamFailed); err != nil {
			return nil, err
		}
		b.Hour = time.UnixMilli(h * 3600000).UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}

func (s *sqlStore) eventsOfType(ctx context.Context, tenantID, typ string, since time.Time, limit int) ([]Event, error) {
	q := "SELECT e.id, e.job_id, e.type, e.data, e.created_at FROM events e"
	args := []any{}
	if tenantID != "" {
		q += " JOIN jobs j ON j.id = e.job_id AND j.tenant_id = ?"
		args = append(args, tenantID)
	}
	q += " WHERE e.type = ? AND e.created_at >= ? ORDER BY e.id DESC LIMIT ?"
	args = append(args, typ, since.UnixMilli(), limit)
	rows, err := s.r.QueryContext(ctx, s.d.q(q), args...)
	return collect(rows, err, scanEvent)
}
