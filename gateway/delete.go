package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/hourglasshq/hourglass/gateway/job"
	"github.com/hourglasshq/hourglass/magichour"
)

// deleteResult is what a delete did besides the job's new state.
type deleteResult struct {
	Job            *Job
	OutputsDeleted int
	// StorageErr: a stored output could not be deleted (the job is deleted
	// all the same; a repeated delete tries again).
	StorageErr error
	// UpstreamErr: deleting the Magic Hour project failed (recorded as an
	// upstream_delete_failed event).
	UpstreamErr error
}

// deleteJob is the one delete of a job, for the native API (DELETE
// /api/jobs/{id}) and the drop-in API (DELETE /v1/...-projects/{id}): the
// job turns deleted (job.Delete, saved with a version check, retried on a
// concurrent change), then its stored outputs are deleted from storage,
// then, when upstream is set, the Magic Hour project. load reads the job
// again after a conflict. job.ErrCreateInFlight while the create is on the
// wire.
func (g *Gateway) deleteJob(ctx context.Context, j *Job, load func() (*Job, error), api string, upstream bool) (deleteResult, error) {
	for attempt := 0; ; attempt++ {
		c, changed, err := j.Delete(g.now(), api)
		if err != nil {
			return deleteResult{}, err
		}
		if !changed {
			break
		}
		u := update(c)
		g.prepare(ctx, &u)
		err = g.store.UpdateJob(ctx, u)
		if err == nil {
			g.nudgeCallbacks()
			break
		}
		if !errors.Is(err, ErrConflict) || attempt >= 5 {
			return deleteResult{}, err
		}
		if j, err = load(); err != nil {
			return deleteResult{}, err
		}
	}
	res := deleteResult{Job: j}
	// After the deleted state is committed: an output step that commits
	// later is refused (CommitOutput's version check) and discards its
	// file; one that committed earlier left its key here.
	outs, err := g.store.Outputs(ctx, j.ID)
	if err != nil {
		return res, err
	}
	for _, o := range outs {
		if o.StorageKey == "" {
			continue
		}
		if err := g.storage.Delete(ctx, o.StorageKey); err != nil {
			res.StorageErr = fmt.Errorf("delete stored output %d: %w", o.Index, err)
			continue
		}
		o.StorageKey = ""
		if err := g.store.UpdateOutput(ctx, o); err != nil {
			return res, err
		}
		res.OutputsDeleted++
	}
	evData := map[string]any{"outputs_deleted": res.OutputsDeleted}
	if upstream && j.UpstreamID != "" {
		if err := g.upDeleteProject(ctx, j.Kind, j.UpstreamID); err != nil && !errors.Is(err, magichour.ErrNotFound) {
			res.UpstreamErr = err
			g.log.Warn("gateway: delete: upstream delete failed", "job", j.ID, "api", api, "err", err)
			_ = g.store.AddEvent(ctx, g.event2(j.ID, "upstream_delete_failed", map[string]any{"error": err.Error()}))
		} else {
			evData["upstream_deleted"] = true
		}
	}
	_ = g.store.AddEvent(ctx, g.event2(j.ID, "deleted", evData))
	return res, nil
}

// errIsCreateInFlight reports a delete refused while the create is on the
// wire.
func errIsCreateInFlight(err error) bool { return errors.Is(err, job.ErrCreateInFlight) }
