package gateway

// Batch queries on the SQL store (both dialects); see batches.go.

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// batchStore is what batches need beyond Store; the SQL store implements it.
type batchStore interface {
	createBatch(ctx context.Context, b *Batch) (*Batch, bool, error)
	batch(ctx context.Context, tenantID, id string) (*Batch, error)
	listBatches(ctx context.Context, tenantID, cursor string, limit int) ([]*Batch, error)
	attachJob(ctx context.Context, batchID, jobID string, line int) error
	batchJobs(ctx context.Context, batchID string) ([]BatchJob, error)
	batchCounts(ctx context.Context, ids []string) (map[string]map[Status]int, map[string]int64, error)
	jobBatch(ctx context.Context, jobID string) (string, int, error)
}

var errNoBatchStore = errors.New("gateway: the store does not support batches")

func (g *Gateway) bstore() (batchStore, error) {
	if bs, ok := g.store.(batchStore); ok {
		return bs, nil
	}
	return nil, errNoBatchStore
}

const batchCols = "id, tenant_id, idempotency_key, name, created_at, updated_at"

func scanBatch(row scanner) (*Batch, error) {
	var b Batch
	var key sql.NullString
	var created, updated int64
	if err := row.Scan(&b.ID, &b.TenantID, &key, &b.Name, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	b.IdempotencyKey = key.String
	b.CreatedAt, b.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &b, nil
}

// createBatch inserts b, or returns the tenant's batch with b's key and
// false.
func (s *sqlStore) createBatch(ctx context.Context, b *Batch) (*Batch, bool, error) {
	res, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO batches ("+batchCols+") VALUES (?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"),
		b.ID, b.TenantID, nstr(b.IdempotencyKey), b.Name, b.CreatedAt.UnixMilli(), b.UpdatedAt.UnixMilli())
	if err != nil {
		return nil, false, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return b, true, nil
	}
	got, err := scanBatch(s.w.QueryRowContext(ctx, s.d.q("SELECT "+batchCols+" FROM batches WHERE tenant_id = ? AND idempotency_key = ?"),
		b.TenantID, b.IdempotencyKey))
	return got, false, err
}

func (s *sqlStore) batch(ctx context.Context, tenantID, id string) (*Batch, error) {
	if tenantID == "" {
		return scanBatch(s.r.QueryRowContext(ctx, s.d.q("SELECT "+batchCols+" FROM batches WHERE id = ?"), id))
	}
	return scanBatch(s.r.QueryRowContext(ctx, s.d.q("SELECT "+batchCols+" FROM batches WHERE id = ? AND tenant_id = ?"), id, tenantID))
}

// listBatches returns batches newest first; cursor is the last id seen.
func (s *sqlStore) listBatches(ctx context.Context, tenantID, cursor string, limit int) ([]*Batch, error) {
	var where []string
	var args []any
	if tenantID != "" {
		where, args = append(where, "tenant_id = ?"), append(args, tenantID)
	}
	if cursor != "" {
		where, args = append(where, "id < ?"), append(args, cursor)
	}
	q := "SELECT " + batchCols + " FROM batches"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.d.q(q), args...)
	return collect(rows, err, scanBatch)
}

// attachJob puts a job in a batch unless it is in one already; touching
// neither the job's version nor its state, it cannot conflict with the
// worker.
func (s *sqlStore) attachJob(ctx context.Context, batchID, jobID string, line int) error {
	_, err := s.w.ExecContext(ctx, s.d.q("UPDATE jobs SET batch_id = ?, batch_line = ? WHERE id = ? AND batch_id IS NULL"), batchID, line, jobID)
	return err
}

func (s *sqlStore) batchJobs(ctx context.Context, batchID string) ([]BatchJob, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT id, idempotency_key, batch_line, tool, status, credits, error_code, error_message, updated_at "+
		"FROM jobs WHERE batch_id = ? ORDER BY batch_line, id"), batchID)
	return collect(rows, err, func(row scanner) (BatchJob, error) {
		var j BatchJob
		var key, code, msg sql.NullString
		var line sql.NullInt64
		var status string
		var updated int64
		err := row.Scan(&j.JobID, &key, &line, &j.Tool, &status, &j.Credits, &code, &msg, &updated)
		j.Key, j.Line, j.Status, j.ErrorCode, j.ErrorMessage = key.String, int(line.Int64), Status(status), code.String, msg.String
		j.UpdatedAt = time.UnixMilli(updated).UTC()
		return j, err
	})
}

// batchCounts returns, per batch, its jobs by status and their credits.
func (s *sqlStore) batchCounts(ctx context.Context, ids []string) (map[string]map[Status]int, map[string]int64, error) {
	counts, credits := map[string]map[Status]int{}, map[string]int64{}
	if len(ids) == 0 {
		return counts, credits, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT batch_id, status, COUNT(*), SUM(credits) FROM jobs WHERE batch_id IN (?"+
		strings.Repeat(", ?", len(ids)-1)+") GROUP BY batch_id, status"), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var n int
		var c sql.NullInt64
		if err := rows.Scan(&id, &status, &n, &c); err != nil {
			return nil, nil, err
		}
		if counts[id] == nil {
			counts[id] = map[Status]int{}
		}
		counts[id][Status(status)] += n
		credits[id] += c.Int64
	}
	return counts, credits, rows.Err()
}

func (s *sqlStore) jobBatch(ctx context.Context, jobID string) (string, int, error) {
	var id sql.NullString
	var line sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.d.q("SELECT batch_id, batch_line FROM jobs WHERE id = ?"), jobID).Scan(&id, &line)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, ErrNotFound
	}
	return id.String, int(line.Int64), err
}
