package web

// The batch pages: /batches (list) and /batches/{id} (counts, credits and
// every job's status). Batches are created through POST /api/batches or
// `hourglass batch run --gateway`.

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/hourglasshq/hourglass/gateway"
)

// batchRoutes adds the batch pages to the dashboard's mux.
func (d *Dashboard) batchRoutes(m *http.ServeMux) {
	m.Handle("GET /batches", d.page(d.handleBatches))
	m.Handle("GET /batches/{id}", d.page(d.handleBatch))
}

// countView is one status and how many jobs have it.
type countView struct {
	Status string
	N      int
}

type batchRowView struct {
	gateway.BatchSummary
	Done    int
	Percent int
	Counts  []countView
	Tenant  string
}

func makeBatchRow(s gateway.BatchSummary, names map[string]string) batchRowView {
	bv := batchRowView{BatchSummary: s, Done: s.Done(), Tenant: names[s.TenantID]}
	if bv.Tenant == "" {
		bv.Tenant = s.TenantID
	}
	if s.Total > 0 {
		bv.Percent = 100 * bv.Done / s.Total
	}
	for _, st := range statuses {
		if n := s.Counts[st]; n > 0 {
			bv.Counts = append(bv.Counts, countView{string(st), n})
		}
	}
	return bv
}

type batchesView struct {
	Rows    []batchRowView
	Admin   bool
	NextURL string
}

func (d *Dashboard) handleBatches(w http.ResponseWriter, r *http.Request, u *user) {
	cursor := r.URL.Query().Get("cursor")
	sums, err := d.gw.Batches(r.Context(), u.Scope(), cursor, pageSize)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names := d.tenantNames(r.Context(), u)
	v := batchesView{Admin: u.Admin}
	for _, s := range sums {
		v.Rows = append(v.Rows, makeBatchRow(s, names))
	}
	if len(sums) == pageSize {
		v.NextURL = "/batches?cursor=" + url.QueryEscape(sums[len(sums)-1].ID)
	}
	d.render(w, r, http.StatusOK, "batches", view{Title: "Batches", Nav: "batches", Data: v})
}

type batchJobView struct {
	gateway.BatchJob
	Key string // the line's key
}

type batchView struct {
	Row   batchRowView
	Admin bool
	Jobs  []batchJobView
}

func (d *Dashboard) handleBatch(w http.ResponseWriter, r *http.Request, u *user) {
	s, jobs, err := d.gw.BatchDetail(r.Context(), u.Scope(), r.PathValue("id"))
	if errors.Is(err, gateway.ErrNotFound) {
		d.notFound(w, r, "There is no batch "+r.PathValue("id")+" you can see.")
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	v := batchView{Row: makeBatchRow(*s, d.tenantNames(r.Context(), u)), Admin: u.Admin}
	for _, j := range jobs {
		v.Jobs = append(v.Jobs, batchJobView{BatchJob: j, Key: gateway.BatchLineKey(j.Key)})
	}
	title := "Batch " + s.ID
	if s.Name != "" {
		title = "Batch " + s.Name
	}
	d.render(w, r, http.StatusOK, "batch", view{Title: title, Nav: "batches", Data: v})
}
