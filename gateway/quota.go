package gateway

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Per-tenant storage quota (Config.TenantStorageQuota: bytes of stored
// outputs plus uploads) and the clean-up of unused uploads
// (Config.UploadTTL).
//
// The quota is checked before work that would add bytes: a submit is
// refused with 507 and an upload with 413 once the tenant is at its quota.
// Outputs of jobs already accepted are always stored (they are paid for
// upstream), so a tenant can end up to its in-flight jobs' outputs above
// the quota.

// quotaStore is what the quota and upload clean-up need beyond Store; the
// SQL store implements it.
type quotaStore interface {
	// tenantStorageBytes sums the sizes of a tenant's stored outputs and
	// uploads.
	tenantStorageBytes(ctx context.Context, tenantID string) (int64, error)
	// staleUploads returns uploads created before before that no pending
	// or creating job refers to (at most limit).
	staleUploads(ctx context.Context, before time.Time, limit int) ([]*Upload, error)
	deleteUpload(ctx context.Context, id string) error
}

// usageCache keeps each tenant's storage usage for a short while, so a
// burst of submits does not sum the tenant's outputs once per request.
type usageCache struct {
	mu sync.Mutex
	m  map[string]usageEntry
}

type usageEntry struct {
	bytes int64
	at    time.Time
}

const usageCacheTTL = 2 * time.Second

func (g *Gateway) tenantUsage(ctx context.Context, tenantID string) (int64, error) {
	qs, ok := g.store.(quotaStore)
	if !ok {
		return 0, nil
	}
	g.usage.mu.Lock()
	e, hit := g.usage.m[tenantID]
	g.usage.mu.Unlock()
	if hit && time.Since(e.at) < usageCacheTTL {
		return e.bytes, nil
	}
	n, err := qs.tenantStorageBytes(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	g.usage.mu.Lock()
	if g.usage.m == nil {
		g.usage.m = map[string]usageEntry{}
	}
	g.usage.m[tenantID] = usageEntry{n, time.Now()}
	g.usage.mu.Unlock()
	return n, nil
}

// forgetUsage drops a tenant's cached usage (after it stored bytes).
func (g *Gateway) forgetUsage(tenantID string) {
	g.usage.mu.Lock()
	delete(g.usage.m, tenantID)
	g.usage.mu.Unlock()
}

// checkQuota refuses an upload (413) when the tenant is at its storage
// quota; upload limits the upload's size to what is left.
func (g *Gateway) checkQuota(ctx context.Context, tenantID string) (int, *apiError) {
	left, ae := g.quotaLeft(ctx, tenantID)
	if ae != nil {
		return http.StatusInternalServerError, ae
	}
	if left <= 0 {
		return http.StatusRequestEntityTooLarge, &apiError{Code: "storage_quota_exceeded", Message: g.quotaMessage("no upload is accepted")}
	}
	return 0, nil
}

// checkSubmitQuota refuses a submit (507) when the tenant is at its quota.
func (g *Gateway) checkSubmitQuota(ctx context.Context, tenantID string) (int, *apiError) {
	left, ae := g.quotaLeft(ctx, tenantID)
	if ae != nil {
		return http.StatusInternalServerError, ae
	}
	if left <= 0 {
		return http.StatusInsufficientStorage, &apiError{Code: "storage_quota_exceeded", Message: g.quotaMessage("no job is accepted")}
	}
	return 0, nil
}

// quotaLeft is how many bytes the tenant may still store (max int64
// without a quota).
func (g *Gateway) quotaLeft(ctx context.Context, tenantID string) (int64, *apiError) {
	if g.cfg.TenantStorageQuota <= 0 {
		return 1<<63 - 1, nil
	}
	used, err := g.tenantUsage(ctx, tenantID)
	if err != nil {
		g.log.Error("gateway: storage usage", "tenant", tenantID, "err", err)
		return 0, &apiError{Code: "internal", Message: "database error"}
	}
	return g.cfg.TenantStorageQuota - used, nil
}

func (g *Gateway) quotaMessage(what string) string {
	return fmt.Sprintf("the tenant's stored outputs and uploads reached its storage quota of %d bytes (--tenant-storage-quota); %s until jobs or uploads are deleted",
		g.cfg.TenantStorageQuota, what)
}

// cleanupUploads deletes uploads older than UploadTTL that no pending or
// creating job needs (files of jobs already created were sent to Magic
// Hour). It returns how many it deleted.
func (g *Gateway) cleanupUploads(ctx context.Context) (int, error) {
	qs, ok := g.store.(quotaStore)
	if !ok || g.cfg.UploadTTL <= 0 {
		return 0, nil
	}
	n := 0
	for {
		ups, err := qs.staleUploads(ctx, g.now().Add(-g.cfg.UploadTTL), 200)
		if err != nil || len(ups) == 0 {
			return n, err
		}
		for _, u := range ups {
			if u.StorageKey != "" {
				if err := g.storage.Delete(ctx, u.StorageKey); err != nil {
					return n, err
				}
			}
			if err := qs.deleteUpload(ctx, u.ID); err != nil {
				return n, err
			}
			n++
		}
		if len(ups) < 200 {
			return n, nil
		}
	}
}

func (s *sqlStore) tenantStorageBytes(ctx context.Context, tenantID string) (int64, error) {
	var outs, ups sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.d.q("SELECT SUM(o.size) FROM outputs o JOIN jobs j ON j.id = o.job_id "+
		"WHERE j.tenant_id = ? AND o.storage_key IS NOT NULL AND o.stored_at IS NOT NULL"), tenantID).Scan(&outs)
	if err != nil {
		return 0, err
	}
	err = s.r.QueryRowContext(ctx, s.d.q("SELECT SUM(size) FROM uploads WHERE tenant_id = ? AND storage_key IS NOT NULL"), tenantID).Scan(&ups)
	return outs.Int64 + ups.Int64, err
}

func (s *sqlStore) staleUploads(ctx context.Context, before time.Time, limit int) ([]*Upload, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT id FROM uploads WHERE created_at < ? ORDER BY created_at LIMIT ?"), before.UnixMilli(), limit*4)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []*Upload
	for _, id := range ids {
		// A job not yet created upstream still needs the file; pending
		// jobs are few, so the LIKE scan stays small.
		var n int
		if err := s.r.QueryRowContext(ctx, s.d.q("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'creating') AND params LIKE ?"),
			"%"+id+"%").Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			continue
		}
		u, err := s.Upload(ctx, "", id)
		if err != nil {
			continue
		}
		out = append(out, u)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (s *sqlStore) deleteUpload(ctx context.Context, id string) error {
	_, err := s.w.ExecContext(ctx, s.d.q("DELETE FROM uploads WHERE id = ?"), id)
	return err
}

// periodicCleanup is the data-hardening part of the clean-up loop: unused
// uploads.
func (g *Gateway) periodicCleanup(ctx context.Context) {
	if n, err := g.cleanupUploads(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("gateway: upload cleanup", "err", err)
	} else if n > 0 {
		g.log.Info("gateway: upload cleanup (unused uploads past their TTL)", "uploads_deleted", n, "ttl", g.cfg.UploadTTL.String())
	}
}
