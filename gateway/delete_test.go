package gateway_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// heldDownloads makes the gateway's output downloads wait: each response
// body is handed over once release is closed; closed reports when the
// download step is done with the body (after its commit or discard).
type heldDownloads struct {
	started chan struct{}
	release chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (h *heldDownloads) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	h.once.Do(func() { close(h.started) })
	<-h.release
	resp.Body = &notifyClose{ReadCloser: resp.Body, closed: h.closed}
	return resp, nil
}

type notifyClose struct {
	io.ReadCloser
	closed chan struct{}
	once   sync.Once
}

func (n *notifyClose) Close() error {
	err := n.ReadCloser.Close()
	n.once.Do(func() { close(n.closed) })
	return err
}

// Issue 11 item 9: a DELETE while the job is storing wins. The download in
// flight finishes afterwards, but its commit is refused by the job's
// version, its file is discarded, and the job reads deleted, with no
// output stored or served.
func TestDeleteDuringStoring(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		held := &heldDownloads{started: make(chan struct{}), release: make(chan struct{}), closed: make(chan struct{})}
		h := newHarness(t, dbURL, hopts{cfg: func(c *gateway.Config) {
			c.DownloadClient = &http.Client{Transport: held}
		}})
		j := h.submit("ai-image-generator", "", "")
		<-held.started // storing, the download on the wire
		var del jobView
		if code, raw := h.do("DELETE", "/api/jobs/"+j.ID, h.tenantKey, nil, &del); code != http.StatusOK || del.Status != "deleted" {
			t.Fatalf("delete during storing: %d %s", code, raw)
		}
		close(held.release)
		<-held.closed

		var got jobView
		h.do("GET", "/api/jobs/"+j.ID, h.tenantKey, nil, &got)
		if got.Status != "deleted" {
			t.Fatalf("status after the download finished: %s", got.Status)
		}
		for _, o := range got.Outputs {
			if o.Stored {
				t.Fatalf("output %d stored after the delete", o.Index)
			}
		}
		if code, _ := h.do("GET", "/api/jobs/"+j.ID+"/outputs/0", h.tenantKey, nil, nil); code == http.StatusOK {
			t.Fatal("output served after the delete")
		}
		evs := h.events(j.ID)
		if count(evs, "output_stored") != 0 || count(evs, "stored") != 0 {
			t.Fatalf("timeline after delete: %v", evs)
		}
		// The last output's file is discarded after its refused save, which
		// may come after the body is closed: wait for it to go.
		waitFor(t, "the deleted job's files to be discarded", func() bool {
			var files []string
			_ = filepath.WalkDir(h.storage.Root(), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.Contains(p, j.ID) {
					files = append(files, p)
				}
				return nil
			})
			return len(files) == 0
		})
		// The job stays deleted: nothing runs for it any more.
		if cur, err := h.store.Job(context.Background(), "", j.ID); err != nil || !cur.NextRunAt.IsZero() || cur.Status != gateway.StatusDeleted {
			t.Fatalf("job row: %+v %v", cur, err)
		}
	})
}

// CommitOutput is refused once the job changed since the step read it
// (here: deleted), and then saves nothing.
func TestCommitOutputChecksVersion(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{noStart: true})
		ctx := context.Background()
		tenant, err := h.store.TenantByKey(ctx, gateway.HashKey(h.tenantKey))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		j := &gateway.Job{Tool: "ai-image-generator", Kind: "image", Params: []byte(`{}`)}
		_, _, err = h.store.CreateJob(ctx, j, j.Accept("job_commit_check", tenant.ID, now))
		if err != nil {
			t.Fatal(err)
		}
		j.Status = gateway.StatusStoring // as the webhook's transition leaves it
		if err := h.store.UpdateJob(ctx, gateway.JobUpdate{Job: j, Outputs: []gateway.Output{{Index: 0, UpstreamURL: "http://127.0.0.1/x.png"}}}); err != nil {
			t.Fatal(err)
		}
		step := *j // the output step's copy
		c, _, err := j.Delete(now, "native")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.store.UpdateJob(ctx, gateway.JobUpdate{Job: c.Job, Events: c.Events}); err != nil {
			t.Fatal(err)
		}
		o := gateway.Output{JobID: step.ID, Index: 0, UpstreamURL: "http://127.0.0.1/x.png", StorageKey: "k", Size: 1, SHA256: "s", StoredAt: now}
		if err := h.store.CommitOutput(ctx, &step, o); !errors.Is(err, gateway.ErrConflict) {
			t.Fatalf("commit after delete: %v, want ErrConflict", err)
		}
		outs, err := h.store.Outputs(ctx, j.ID)
		if err != nil || len(outs) != 1 || outs[0].StorageKey != "" || !outs[0].StoredAt.IsZero() {
			t.Fatalf("outputs after a refused commit: %+v %v", outs, err)
		}
		// The step's own version, unchanged job: accepted, version bumped.
		k := &gateway.Job{Tool: "ai-image-generator", Kind: "image", Params: []byte(`{}`)}
		if _, _, err := h.store.CreateJob(ctx, k, k.Accept("job_commit_ok", tenant.ID, now)); err != nil {
			t.Fatal(err)
		}
		k.Status = gateway.StatusStoring
		if err := h.store.UpdateJob(ctx, gateway.JobUpdate{Job: k, Outputs: []gateway.Output{{Index: 0, UpstreamURL: "http://127.0.0.1/y.png"}}}); err != nil {
			t.Fatal(err)
		}
		v := k.Version
		o.JobID = k.ID
		if err := h.store.CommitOutput(ctx, k, o); err != nil || k.Version != v+1 {
			t.Fatalf("commit on an unchanged job: %v, version %d -> %d", err, v, k.Version)
		}
	})
}
