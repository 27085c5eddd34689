package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

const pageSize = 25

var statuses = []gateway.Status{gateway.StatusPending, gateway.StatusCreating, gateway.StatusSubmitted, gateway.StatusQueued,
	gateway.StatusRendering, gateway.StatusStoring, gateway.StatusStored, gateway.StatusError, gateway.StatusCanceled,
	gateway.StatusCreateOutcomeUnknown, gateway.StatusDeleted}

// rowView is one line of the jobs table (also sent over SSE).
type rowView struct {
	ID         string
	Status     string
	Tool       string
	Tenant     string
	ShowTenant bool
	Created    time.Time
	StartMs    int64 // for the live duration of unfinished jobs
	Duration   string
	Running    bool
	Credits    int64
	ErrorCode  string
	Version    int64
	Name       string // the job's name, else its prompt, else its metadata
}

// rowName is what tells jobs apart in the list: params.name, else a
// prompt, else the metadata as JSON.
func rowName(j *gateway.Job) string {
	var p struct {
		Name   string `json:"name"`
		Prompt string `json:"prompt"`
		Style  struct {
			Prompt string `json:"prompt"`
		} `json:"style"`
	}
	_ = json.Unmarshal(j.Params, &p) // params are the API's, checked on submit
	for _, s := range []string{p.Name, p.Style.Prompt, p.Prompt} {
		if s = strings.TrimSpace(s); s != "" {
			return short(s, 60)
		}
	}
	if len(j.Metadata) > 0 && string(j.Metadata) != "null" {
		return short(string(j.Metadata), 60)
	}
	return ""
}

func (d *Dashboard) tenantNames(ctx context.Context, u *user) map[string]string {
	names := map[string]string{}
	if u.Tenant != nil {
		names[u.Tenant.ID] = u.Tenant.Name
		return names
	}
	ts, err := d.gw.Store().ListTenants(ctx)
	if err == nil {
		for _, t := range ts {
			names[t.ID] = t.Name
		}
	}
	return names
}

func makeRow(j *gateway.Job, names map[string]string, admin bool, now time.Time) rowView {
	rv := rowView{ID: j.ID, Status: string(j.Status), Tool: j.Tool, Tenant: names[j.TenantID], ShowTenant: admin,
		Created: j.CreatedAt, StartMs: j.CreatedAt.UnixMilli(), Credits: j.Credits, ErrorCode: j.ErrorCode, Version: j.Version, Name: rowName(j)}
	if rv.ErrorCode == rv.Status {
		rv.ErrorCode = "" // "canceled canceled"
	}
	if rv.Tenant == "" {
		rv.Tenant = j.TenantID
	}
	if j.Status.Terminal() && !j.FinishedAt.IsZero() {
		rv.Duration = fmtDuration(j.FinishedAt.Sub(j.CreatedAt))
	} else {
		rv.Running = !j.Status.Terminal()
		rv.Duration = fmtDuration(now.Sub(j.CreatedAt))
	}
	return rv
}

type listFilter struct {
	Status, Tool, Tenant, Cursor string
}

func (f listFilter) query(cursor string) string {
	q := make([]string, 0, 4)
	add := func(k, v string) {
		if v != "" {
			q = append(q, k+"="+urlEscape(v))
		}
	}
	add("status", f.Status)
	add("tool", f.Tool)
	add("tenant", f.Tenant)
	add("cursor", cursor)
	if len(q) == 0 {
		return ""
	}
	return "?" + strings.Join(q, "&")
}

type listView struct {
	Rows       []rowView
	Filter     listFilter
	Statuses   []gateway.Status
	Tools      []string
	Tenants    []*gateway.Tenant
	Admin      bool
	NextURL    string
	FirstURL   string
	StreamURL  string
	FirstPage  bool
	Filtered   bool
	FilterNote string
}

func (d *Dashboard) parseFilter(r *http.Request, u *user) (listFilter, gateway.JobFilter, string) {
	q := r.URL.Query()
	f := listFilter{Status: q.Get("status"), Tool: q.Get("tool"), Tenant: q.Get("tenant"), Cursor: q.Get("cursor")}
	jf := gateway.JobFilter{TenantID: u.Scope(), Cursor: f.Cursor, Limit: pageSize}
	var notes []string
	if f.Status != "" {
		if gateway.Status(f.Status).Valid() {
			jf.Status = gateway.Status(f.Status)
		} else {
			notes = append(notes, fmt.Sprintf("unknown status %q ignored", f.Status))
			f.Status = ""
		}
	}
	if f.Tool != "" {
		if d.gw.Catalog().Lookup(f.Tool) != nil {
			jf.Tool = f.Tool
		} else {
			notes = append(notes, fmt.Sprintf("unknown tool %q ignored", f.Tool))
			f.Tool = ""
		}
	}
	if u.Admin && f.Tenant != "" {
		jf.TenantID = f.Tenant
	} else {
		f.Tenant = ""
	}
	return f, jf, strings.Join(notes, "; ")
}

func (d *Dashboard) toolNames() []string {
	var out []string
	for _, op := range d.gw.Catalog().Creates() {
		out = append(out, op.Name)
	}
	return out
}

func (d *Dashboard) handleList(w http.ResponseWriter, r *http.Request, u *user) {
	ctx := r.Context()
	f, jf, note := d.parseFilter(r, u)
	since := d.gw.Now().Add(-2 * time.Second)
	jobs, err := d.gw.Store().ListJobs(ctx, jf)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names := d.tenantNames(ctx, u)
	now := d.gw.Now()
	lv := listView{Filter: f, Statuses: statuses, Tools: d.toolNames(), Admin: u.Admin, FirstPage: f.Cursor == "",
		Filtered: f.Status != "" || f.Tool != "" || f.Tenant != "", FilterNote: note}
	for _, j := range jobs {
		lv.Rows = append(lv.Rows, makeRow(j, names, u.Admin, now))
	}
	if u.Admin {
		lv.Tenants, _ = d.gw.Store().ListTenants(ctx)
	}
	if len(jobs) == jf.Limit {
		lv.NextURL = "/" + f.query(jobs[len(jobs)-1].ID)
	}
	if f.Cursor != "" {
		lv.FirstURL = "/" + f.query("")
	}
	sf := f
	sf.Cursor = ""
	lv.StreamURL = "/stream" + sf.query("")
	if lv.StreamURL == "/stream" {
		lv.StreamURL += "?"
	} else {
		lv.StreamURL += "&"
	}
	lv.StreamURL += "since=" + strconv.FormatInt(since.UnixMilli(), 10)
	d.render(w, r, http.StatusOK, "list", view{Title: "Jobs", Nav: "jobs", Data: lv})
}

// --- detail ---

type outputView struct {
	JobID       string
	Index       int
	URL         string
	DownloadURL string
	Media       string // image, video, audio, other
	ContentType string
	Size        string
	SHA256      string
	Problem     string // why there is nothing to show
}

type eventView struct {
	ID     int64
	Time   time.Time
	Type   string
	Label  string
	Detail string
	Tone   string // ok, warn, bad, ""
}

type detailView struct {
	Row      rowView
	Job      *gateway.Job
	Params   string
	Metadata string
	Outputs  []outputView
	Events   []eventView
	Pending  string // why there are no outputs yet
	Terminal bool
	// BatchID and BatchLine place the job in its batch, if any.
	BatchID   string
	BatchLine int
}

// prettyJSON indents small params and metadata (gateway.PrettyJSON: large
// or deep values stay compact).
func prettyJSON(b []byte) string { return gateway.PrettyJSON(b) }

func mediaOf(contentType, key string) (string, string) {
	ct := contentType
	if ct == "" || ct == "application/octet-stream" {
		if t := mime.TypeByExtension(path.Ext(key)); t != "" {
			ct = t
		}
	}
	base, _, _ := strings.Cut(ct, ";")
	switch {
	case strings.HasPrefix(base, "image/"):
		return "image", ct
	case strings.HasPrefix(base, "video/"):
		return "video", ct
	case strings.HasPrefix(base, "audio/"):
		return "audio", ct
	}
	return "other", ct
}

func (d *Dashboard) detail(ctx context.Context, u *user, id string) (*detailView, error) {
	j, err := d.gw.Store().Job(ctx, u.Scope(), id)
	if err != nil {
		return nil, err
	}
	outs, err := d.gw.Store().Outputs(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	evs, err := d.gw.Store().Events(ctx, j.ID, 0, 1000)
	if err != nil {
		return nil, err
	}
	dv := &detailView{Row: makeRow(j, d.tenantNames(ctx, u), u.Admin, d.gw.Now()), Job: j,
		Params: prettyJSON(j.Params), Metadata: prettyJSON(j.Metadata), Terminal: j.Status.Terminal()}
	dv.Outputs = d.outputViews(ctx, j, outs)
	dv.BatchID, dv.BatchLine, _ = d.gw.JobBatch(ctx, j.ID)
	if len(outs) == 0 {
		switch {
		case j.Status == gateway.StatusStored:
			dv.Pending = "The job is stored but lists no outputs."
		case j.Status.Terminal():
			dv.Pending = "No outputs: the job ended as " + string(j.Status) + "."
		default:
			dv.Pending = "Outputs appear here once the job is stored (now: " + string(j.Status) + ")."
		}
	}
	for _, ev := range evs {
		dv.Events = append(dv.Events, describeEvent(ev))
	}
	return dv, nil
}

func (d *Dashboard) outputViews(ctx context.Context, j *gateway.Job, outs []gateway.Output) []outputView {
	var views []outputView
	for _, o := range outs {
		ov := outputView{JobID: j.ID, Index: o.Index, SHA256: o.SHA256}
		ov.Media, ov.ContentType = mediaOf(o.ContentType, o.StorageKey)
		ov.URL = fmt.Sprintf("/jobs/%s/outputs/%d", j.ID, o.Index)
		ov.DownloadURL = ov.URL + "?download=1"
		switch {
		case o.StoredAt.IsZero():
			if j.Status.Terminal() {
				ov.Problem = "This output was never stored: the job ended as " + string(j.Status) + " before it was copied."
			} else {
				ov.Problem = "Not stored yet: the gateway is copying it from Magic Hour."
			}
		case o.StorageKey == "":
			ov.Problem = "The stored copy was deleted (DELETE /api/jobs/" + j.ID + ")."
		default:
			ov.Size = fmtBytes(o.Size)
			if err := d.gw.CheckOutput(ctx, o); err != nil {
				if errors.Is(err, gateway.ErrNotFound) {
					ov.Problem = "The stored file is missing from storage (" + o.StorageKey + "); it may have been removed outside the gateway."
				} else {
					ov.Problem = "The stored file cannot be read: " + err.Error()
				}
			}
		}
		views = append(views, ov)
	}
	return views
}

// describeEvent turns a timeline event into a line for people.
func describeEvent(ev gateway.Event) eventView {
	var data map[string]any
	_ = json.Unmarshal(ev.Data, &data)
	s := func(k string) string {
		v, ok := data[k]
		if !ok || v == nil {
			return ""
		}
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	e := eventView{ID: ev.ID, Time: ev.CreatedAt, Type: ev.Type, Label: strings.ReplaceAll(ev.Type, "_", " ")}
	switch ev.Type {
	case "created":
		e.Label, e.Detail = "Created", "accepted by the gateway"
	case "create_sent":
		e.Label, e.Detail = "Create sent", "attempt "+s("attempt")
	case "submitted":
		e.Label, e.Detail, e.Tone = "Submitted", "Magic Hour project "+s("upstream_id")+", "+s("credits")+" credits", "ok"
	case "create_failed":
		e.Label, e.Detail, e.Tone = "Create failed", "attempt "+s("attempt")+": "+s("error"), "warn"
	case "webhook":
		e.Label, e.Detail = "Webhook", s("type")+" → "+s("upstream_status")
	case "poll":
		e.Label, e.Detail = "Poll", "#"+s("poll")+": "+s("upstream_status")
	case "poll_failed":
		e.Label, e.Detail, e.Tone = "Poll failed", "attempt "+s("attempt")+": "+s("error"), "warn"
	case "status":
		e.Label, e.Detail = "Status", s("from")+" → "+s("to")
		switch s("to") {
		case "error", "canceled":
			e.Tone = "bad"
		}
	case "urls_refreshed":
		e.Label, e.Detail = "Download URLs refreshed", plural(s("outputs"), "output")
	case "output_stored":
		e.Label, e.Tone = "Download stored", "ok"
		e.Detail = "output " + s("index") + ", " + fmtBytes(int64(num(data["size"]))) + ", sha256 " + short(s("sha256"), 12)
	case "store_failed":
		e.Label, e.Detail, e.Tone = "Download failed", "attempt "+s("attempt")+": "+s("error"), "warn"
	case "stored":
		e.Label, e.Detail, e.Tone = "Stored", plural(s("outputs"), "output")+" verified", "ok"
	case "error":
		e.Label, e.Detail, e.Tone = "Error", s("code")+": "+s("message"), "bad"
	case "create_outcome_unknown":
		e.Label, e.Detail, e.Tone = "Create outcome unknown", s("reason"), "bad"
	case "canceled_by_client":
		e.Label, e.Detail, e.Tone = "Canceled", "tracking canceled through the API", "bad"
	case "deleted_by_client":
		e.Label, e.Detail, e.Tone = "Deleted", "deleted through the "+s("api")+" API (was "+s("from")+")", "bad"
	case "deleted":
		e.Label, e.Detail = "Deleted", plural(s("outputs_deleted"), "stored output")+" deleted"
	default:
		// Callbacks and anything newer: show the type and its data.
		if strings.HasPrefix(ev.Type, "callback") {
			e.Label = "Callback " + strings.TrimPrefix(strings.TrimPrefix(ev.Type, "callback"), "_")
			if a := s("attempt"); a != "" {
				e.Label += " (attempt " + a + ")"
			}
			if strings.Contains(ev.Type, "fail") || s("error") != "" {
				e.Tone = "warn"
			}
		}
		var parts []string
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "attempt" && strings.HasPrefix(ev.Type, "callback") {
				continue
			}
			parts = append(parts, k+"="+s(k))
		}
		e.Detail = strings.Join(parts, " ")
	}
	return e
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func (d *Dashboard) handleDetail(w http.ResponseWriter, r *http.Request, u *user) {
	dv, err := d.detail(r.Context(), u, r.PathValue("id"))
	if errors.Is(err, gateway.ErrNotFound) {
		d.notFound(w, r, "There is no job "+r.PathValue("id")+" you can see.")
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "detail", view{Title: "Job " + dv.Job.ID, Nav: "jobs", Data: dv})
}

func (d *Dashboard) handleOutput(w http.ResponseWriter, r *http.Request, u *user) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		http.Error(w, "bad output index", http.StatusBadRequest)
		return
	}
	// ?download=1 makes it an attachment; the gateway names the file from
	// the job it found in the user's scope (nothing when it found none).
	d.gw.ServeOutputAs(w, r, u.Principal, r.PathValue("id"), n)
}

// plural is "1 output" or "n outputs" (n as the event recorded it).
func plural(n, noun string) string {
	if n == "1" {
		return n + " " + noun
	}
	return n + " " + noun + "s"
}
