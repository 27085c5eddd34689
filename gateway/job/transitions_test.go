package job

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	errOops = errors.New("errOops")
	retry   = Retry{At: t0.Add(time.Second)}
	final   = Retry{Final: true}
)

// ignored marks news that changes nothing (late or reordered upstream
// news); absent from a row's map means the transition is refused.
const ignored Status = "(ignored)"

// transitions lists every event the state machine knows, with the status
// each from-status leads to.
var transitions = []struct {
	name string
	fire func(j *Job) (Change, bool, error) // changed=false: nothing to save
	to   map[Status]Status
}{
	{"upload_failed/retry", func(j *Job) (Change, bool, error) { c, err := j.UploadFailed(t0, errOops, retry); return c, true, err },
		map[Status]Status{StatusPending: StatusPending}},
	{"upload_failed/final", func(j *Job) (Change, bool, error) { c, err := j.UploadFailed(t0, errOops, final); return c, true, err },
		map[Status]Status{StatusPending: StatusError}},
	{"create_sent", func(j *Job) (Change, bool, error) { c, err := j.StartCreate(t0); return c, true, err },
		map[Status]Status{StatusPending: StatusCreating}},
	{"queued_locally", func(j *Job) (Change, bool, error) { c, err := j.Throttled(t0, t0, true, 2); return c, true, err },
		map[Status]Status{StatusCreating: StatusPending}},
	{"submitted", func(j *Job) (Change, bool, error) {
		c, err := j.Created(t0, "up_1", 7, t0.Add(time.Minute))
		return c, true, err
	}, map[Status]Status{StatusCreating: StatusSubmitted, StatusCreateOutcomeUnknown: StatusSubmitted}},
	{"create_refused", func(j *Job) (Change, bool, error) {
		c, err := j.CreateRefused(t0, "upstream_422", "no")
		return c, true, err
	},
		map[Status]Status{StatusCreating: StatusError}},
	{"create_failed/retry", func(j *Job) (Change, bool, error) { c, err := j.CreateFailed(t0, errOops, retry); return c, true, err },
		map[Status]Status{StatusCreating: StatusPending}},
	{"create_failed/final", func(j *Job) (Change, bool, error) { c, err := j.CreateFailed(t0, errOops, final); return c, true, err },
		map[Status]Status{StatusCreating: StatusError}},
	{"create_outcome_unknown", func(j *Job) (Change, bool, error) { c, err := j.OutcomeUnknown(t0, "lost"); return c, true, err },
		map[Status]Status{StatusCreating: StatusCreateOutcomeUnknown}},
	{"poll/rendering", func(j *Job) (Change, bool, error) { return j.Polled(t0, Upstream{Status: "rendering"}, time.Second) },
		map[Status]Status{StatusSubmitted: StatusRendering, StatusQueued: StatusRendering, StatusRendering: StatusRendering}},
	{"poll_failed/retry", func(j *Job) (Change, bool, error) {
		c, err := j.PollFailed(t0, errOops, "poll_failed", retry)
		return c, true, err
	}, map[Status]Status{StatusSubmitted: StatusSubmitted, StatusQueued: StatusQueued, StatusRendering: StatusRendering}},
	{"poll_failed/final", func(j *Job) (Change, bool, error) {
		c, err := j.PollFailed(t0, errOops, "upstream_not_found", final)
		return c, true, err
	}, map[Status]Status{StatusSubmitted: StatusError, StatusQueued: StatusError, StatusRendering: StatusError}},
	{"store_failed/retry", func(j *Job) (Change, bool, error) { c, err := j.StoreFailed(t0, errOops, retry); return c, true, err },
		map[Status]Status{StatusStoring: StatusStoring}},
	{"store_failed/final", func(j *Job) (Change, bool, error) { c, err := j.StoreFailed(t0, errOops, final); return c, true, err },
		map[Status]Status{StatusStoring: StatusError}},
	{"stored", func(j *Job) (Change, bool, error) { c, err := j.Stored(t0, 1); return c, true, err },
		map[Status]Status{StatusStoring: StatusStored}},
	{"park", func(j *Job) (Change, bool, error) { c, err := j.Park(t0); return c, true, err },
		map[Status]Status{StatusStored: StatusStored, StatusError: StatusError, StatusCanceled: StatusCanceled,
			StatusCreateOutcomeUnknown: StatusCreateOutcomeUnknown, StatusDeleted: StatusDeleted}},
	{"delete", func(j *Job) (Change, bool, error) { return j.Delete(t0, "native") },
		map[Status]Status{StatusPending: StatusDeleted, StatusSubmitted: StatusDeleted, StatusQueued: StatusDeleted,
			StatusRendering: StatusDeleted, StatusStoring: StatusDeleted, StatusStored: StatusDeleted, StatusError: StatusDeleted,
			StatusCanceled: StatusDeleted, StatusCreateOutcomeUnknown: StatusDeleted, StatusDeleted: ignored}},
}

// upstreamNews: Apply never refuses; news for a job not tracked, or older
// than its state, is ignored.
var upstreamNews = []struct {
	status string
	to     map[Status]Status
}{
	{"queued", map[Status]Status{StatusSubmitted: StatusQueued}},
	{"rendering", map[Status]Status{StatusSubmitted: StatusRendering, StatusQueued: StatusRendering}},
	{"complete", map[Status]Status{StatusSubmitted: StatusStoring, StatusQueued: StatusStoring, StatusRendering: StatusStoring}},
	{"error", map[Status]Status{StatusSubmitted: StatusError, StatusQueued: StatusError, StatusRendering: StatusError}},
	{"canceled", map[Status]Status{StatusSubmitted: StatusCanceled, StatusQueued: StatusCanceled, StatusRendering: StatusCanceled}},
	{"mystery", map[Status]Status{}},
}

func jobIn(s Status) *Job {
	j := &Job{ID: "job_1", TenantID: "ten_1", Tool: "ai-image-generator", Status: s, Credits: 5,
		LeaseOwner: "r1", LeaseUntil: t0.Add(time.Minute), NextRunAt: t0}
	if s != StatusPending && s != StatusCreating {
		j.UpstreamID = "up_1"
	}
	j.MarkSaved()
	return j
}

// Every (state, event) pair: the resulting status, or a refusal that
// leaves the job untouched.
func TestTransitionTable(t *testing.T) {
	t.Parallel()
	for _, tr := range transitions {
		for _, from := range Statuses() {
			t.Run(tr.name+"/"+string(from), func(t *testing.T) {
				j := jobIn(from)
				before := *j
				c, changed, err := tr.fire(j)
				want, ok := tr.to[from]
				switch {
				case !ok:
					var te *TransitionError
					if !errors.Is(err, ErrIllegal) || !errors.As(err, &te) || te.From != from {
						t.Fatalf("%s from %s: err %v, want a refusal", tr.name, from, err)
					}
					if !reflect.DeepEqual(*j, before) {
						t.Fatalf("refused %s changed the job: %+v", tr.name, j)
					}
				case err != nil:
					t.Fatalf("%s from %s: %v", tr.name, from, err)
				case want == ignored:
					if changed || j.Status != from {
						t.Fatalf("%s from %s: changed=%v status %s, want nothing", tr.name, from, changed, j.Status)
					}
				default:
					if j.Status != want || c.Job != j {
						t.Fatalf("%s from %s: status %s, want %s", tr.name, from, j.Status, want)
					}
					checkInvariants(t, j, c)
				}
			})
		}
	}
	for _, n := range upstreamNews {
		for _, from := range Statuses() {
			j := jobIn(from)
			c, changed := j.Apply(t0, Upstream{Status: n.status, Downloads: []Output{{Index: 0, UpstreamURL: "u"}}})
			want, ok := n.to[from]
			if !ok {
				if changed || j.Status != from {
					t.Errorf("news %s for %s: moved to %s", n.status, from, j.Status)
				}
				continue
			}
			if !changed || j.Status != want {
				t.Errorf("news %s for %s: %s (changed %v), want %s", n.status, from, j.Status, changed, want)
			}
			checkInvariants(t, j, c)
		}
	}
}

// checkInvariants: terminal jobs have nothing due and no lease; every
// status change says so in the timeline.
func checkInvariants(t *testing.T, j *Job, c Change) {
	t.Helper()
	if j.Status.Terminal() && (!j.NextRunAt.IsZero() || j.LeaseOwner != "") {
		t.Errorf("%s job still due (%v) or leased (%q)", j.Status, j.NextRunAt, j.LeaseOwner)
	}
	if j.Status != j.SavedStatus() && len(c.Events) == 0 && j.Status != StatusPending {
		t.Errorf("change to %s without an event", j.Status)
	}
}

// Credits: a reservation goes back exactly when nothing was (or will be)
// charged; what Magic Hour charged replaces the estimate.
func TestTransitionCredits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		from  Status
		fire  func(j *Job) Change
		delta int64
		after int64
	}{
		{"refused create releases", StatusCreating, func(j *Job) Change { c, _ := j.CreateRefused(t0, "x", "y"); return c }, -5, 0},
		{"last create failure releases", StatusCreating, func(j *Job) Change { c, _ := j.CreateFailed(t0, errOops, final); return c }, -5, 0},
		{"create retry keeps", StatusCreating, func(j *Job) Change { c, _ := j.CreateFailed(t0, errOops, retry); return c }, 0, 5},
		{"last upload failure releases", StatusPending, func(j *Job) Change { c, _ := j.UploadFailed(t0, errOops, final); return c }, -5, 0},
		{"outcome unknown keeps", StatusCreating, func(j *Job) Change { c, _ := j.OutcomeUnknown(t0, "?"); return c }, 0, 5},
		{"created corrects to charged", StatusCreating, func(j *Job) Change { c, _ := j.Created(t0, "u", 7, t0); return c }, 2, 7},
		{"upstream error refunds", StatusRendering, func(j *Job) Change { c, _ := j.Apply(t0, Upstream{Status: "error"}); return c }, -5, 0},
		{"upstream cancel refunds", StatusQueued, func(j *Job) Change { c, _ := j.Apply(t0, Upstream{Status: "canceled"}); return c }, -5, 0},
		{"complete corrects to charged", StatusRendering, func(j *Job) Change {
			c, _ := j.Apply(t0, Upstream{Status: "complete", CreditsCharged: 4, Downloads: []Output{{}}})
			return c
		}, -1, 4},
		{"delete of a pending job releases", StatusPending, func(j *Job) Change { c, _, _ := j.Delete(t0, "native"); return c }, -5, 0},
		{"delete of a tracked job keeps", StatusRendering, func(j *Job) Change { c, _, _ := j.Delete(t0, "drop-in"); return c }, 0, 5},
		{"poll failure keeps", StatusRendering, func(j *Job) Change {
			c, _ := j.PollFailed(t0, errOops, "upstream_not_found", final)
			return c
		}, 0, 5},
	}
	for _, tc := range cases {
		j := jobIn(tc.from)
		c := tc.fire(j)
		if c.CreditsDelta != tc.delta || j.Credits != tc.after {
			t.Errorf("%s: delta %d credits %d, want %d and %d", tc.name, c.CreditsDelta, j.Credits, tc.delta, tc.after)
		}
	}
}

// A completed project without downloads is an error, not a stored job.
func TestCompleteWithoutOutputs(t *testing.T) {
	t.Parallel()
	j := jobIn(StatusRendering)
	c, changed := j.Apply(t0, Upstream{Status: "complete"})
	if !changed || j.Status != StatusError || j.ErrorCode != "no_outputs" || c.Outputs != nil {
		t.Fatalf("got %s %s %v", j.Status, j.ErrorCode, c.Outputs)
	}
}

// Delete stamps DeletedAt and names the API in the timeline.
func TestDeleteRecordsAPI(t *testing.T) {
	t.Parallel()
	j := jobIn(StatusStored)
	c, changed, err := j.Delete(t0, "drop-in")
	if err != nil || !changed || !j.DeletedAt.Equal(t0) || len(c.Events) != 1 || c.Events[0].Type != "deleted_by_client" {
		t.Fatalf("delete: %v %v %+v", err, changed, c.Events)
	}
	if _, _, err := jobIn(StatusCreating).Delete(t0, "native"); !errors.Is(err, ErrCreateInFlight) {
		t.Fatalf("delete while creating: %v", err)
	}
}
