package magichour

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
)

// flowSpeed compresses time in the flow tests: emulator and Wait agree.
const flowSpeed = 200

func flowClient(t testing.TB, srv *emulator.Server, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(append([]Option{
		WithAPIKey(srv.APIKey), WithBaseURL(srv.URL),
		WithRetry(RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func createImage(t testing.TB, c *Client, name string, count int) *CreateResponse {
	t.Helper()
	cr, err := c.Create(context.Background(), ToolAIImageGenerator, map[string]any{
		"name": name, "image_count": count, "style": map[string]any{"prompt": "a cat"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

func TestPollScheduleBoundsLag(t *testing.T) {
	for _, exp := range []time.Duration{3 * time.Second, 5 * time.Second, 21 * time.Second, 96 * time.Second, 772 * time.Second} {
		s := DefaultPollSchedule(exp)
		times := s.Times(5 * exp)
		if first := times[0]; first < 250*time.Millisecond || first > 2*time.Second {
			t.Errorf("E=%v: first poll at %v, want within [250ms, 2s]", exp, first)
		}
		if !slices.IsSorted(times) {
			t.Errorf("E=%v: poll times not increasing: %v", exp, times)
		}
		for i := 1; i < len(times); i++ {
			gap := times[i] - times[i-1]
			if gap > s.MaxInterval {
				t.Errorf("E=%v: gap %v after %v exceeds MaxInterval", exp, gap, times[i-1])
			}
			// From the dense phase on, a job ending anywhere in the gap is
			// seen within max(1s, 10% of its duration).
			if times[i-1] >= exp/2 {
				if bound := max(time.Second, times[i-1]/10); gap > bound {
					t.Errorf("E=%v: gap %v after %v exceeds lag bound %v", exp, gap, times[i-1], bound)
				}
			}
		}
		// Polls needed for a job that takes exactly E, versus every 2s.
		n := sort.Search(len(times), func(i int) bool { return times[i] >= exp }) + 1
		if fixed := int(exp / (2 * time.Second)); exp >= 200*time.Second && n*4 > fixed {
			t.Errorf("E=%v: %d polls, fixed 2s poller %d: want at least 4x fewer", exp, n, fixed)
		}
	}
}

// TestPollScheduleSimulated draws lognormal durations like the emulator's
// and checks the lag goal on the schedule alone.
func TestPollScheduleSimulated(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var within, total int
	var polls, fixed float64
	for _, exp := range []time.Duration{3 * time.Second, 9 * time.Second, 21 * time.Second, 74 * time.Second, 229 * time.Second, 772 * time.Second} {
		times := DefaultPollSchedule(exp).Times(20 * exp)
		for range 2000 {
			d := time.Duration(float64(exp) * math.Exp(0.35*r.NormFloat64()))
			i := sort.Search(len(times), func(i int) bool { return times[i] >= d })
			lag := times[i] - d
			if lag <= max(time.Second, d/10) {
				within++
			}
			total++
			polls += float64(i + 1)
			fixed += math.Ceil(float64(d) / float64(2*time.Second))
		}
	}
	if frac := float64(within) / float64(total); frac < 0.95 {
		t.Errorf("only %.1f%% of jobs seen within max(1s, 10%%), want >= 95%%", 100*frac)
	}
	if fixed/polls < 4 {
		t.Errorf("polls %.0f vs fixed-2s %.0f: ratio %.2f, want >= 4", polls, fixed, fixed/polls)
	}
}

func TestPollScheduleFirstPoll(t *testing.T) {
	if d := DefaultPollSchedule(time.Second).Next(0, false); d != 250*time.Millisecond {
		t.Errorf("1s job: first poll %v, want 250ms", d)
	}
	if d := DefaultPollSchedule(10*time.Minute).Next(0, false); d != 2*time.Second {
		t.Errorf("10m job: first poll %v, want 2s", d)
	}
	if d := DefaultPollSchedule(time.Hour).Next(time.Hour, true); d != DefaultMaxPollInterval {
		t.Errorf("late poll gap %v, want MaxInterval", d)
	}
}

func TestWaitOutcomes(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	cases := []struct {
		name     string
		status   Status
		is       error
		code     string
		terminal bool
	}{
		{"fine", StatusComplete, nil, "", true},
		{"boom", StatusError, ErrJobFailed, "unknown_error", true},
		{"noface please", StatusError, ErrJobFailed, "no_source_face", true},
		{"cancelme", StatusCanceled, ErrCanceled, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := createImage(t, c, tc.name, 1)
			var mu sync.Mutex
			var seen []Status
			p, err := c.Wait(context.Background(), cr.Kind, cr.ID, WithTool(ToolAIImageGenerator), WithTimeScale(flowSpeed),
				WithStatusCallback(func(p *Project) { mu.Lock(); seen = append(seen, p.Status); mu.Unlock() }))
			if p == nil || p.Status != tc.status {
				t.Fatalf("Wait = %+v, %v; want status %s", p, err, tc.status)
			}
			if tc.is == nil && err != nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if tc.code != "" {
				var je *JobError
				if !errors.As(err, &je) || je.Code != tc.code || je.ProjectID != cr.ID {
					t.Fatalf("err = %#v, want JobError %s", err, tc.code)
				}
			}
			if tc.status == StatusCanceled {
				var ce *CanceledError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want *CanceledError", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 || seen[len(seen)-1] != tc.status {
				t.Fatalf("status callbacks %v, want to end with %s", seen, tc.status)
			}
			for i := 1; i < len(seen); i++ {
				if seen[i] == seen[i-1] {
					t.Fatalf("callback repeated a status: %v", seen)
				}
			}
			if polls := srv.Emulator.Stats().Polls[cr.ID]; polls > 12 {
				t.Errorf("%d polls for a 5s image job, want few", polls)
			}
		})
	}
}

func TestWaitCancelFromDashboard(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(1)) // real time: cancel while queued
	c := flowClient(t, srv)
	cr := createImage(t, c, "x", 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = srv.Emulator.Cancel(cr.ID)
	}()
	p, err := c.Wait(context.Background(), cr.Kind, cr.ID, WithExpected(time.Second), WithTimeScale(10))
	if !errors.Is(err, ErrCanceled) || p.Status != StatusCanceled {
		t.Fatalf("Wait = %v, %v; want canceled", p, err)
	}
}

func TestWaitToleratesTransientErrors(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv, WithRetry(RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	cr := createImage(t, c, "x", 1)
	if err := srv.Emulator.SetFaults(emulator.Faults{ServerError: 0.4, Unavailable: 0.2}); err != nil {
		t.Fatal(err)
	}
	p, err := c.Wait(context.Background(), cr.Kind, cr.ID, WithTool(ToolAIImageGenerator), WithTimeScale(flowSpeed), WithTransientErrorLimit(50))
	if err != nil || p.Status != StatusComplete {
		t.Fatalf("Wait = %v, %v", p, err)
	}
	st := srv.Emulator.Stats()
	if st.Requests["GET /v1/image-projects/{id} 500"]+st.Requests["GET /v1/image-projects/{id} 503"] == 0 {
		t.Log("no fault was drawn; test proved little")
	}
}

func TestWaitGivesUpOnPersistentErrors(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv, WithRetry(RetryPolicy{MaxAttempts: 1}))
	cr := createImage(t, c, "x", 1)
	if err := srv.Emulator.SetFaults(emulator.Faults{ServerError: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Wait(context.Background(), cr.Kind, cr.ID, WithExpected(time.Second), WithTimeScale(100), WithTransientErrorLimit(3))
	if !errors.Is(err, ErrServer) {
		t.Fatalf("err = %v, want ErrServer", err)
	}
	if got := srv.Emulator.Stats().Requests["GET /v1/image-projects/{id} 500"]; got != 3 {
		t.Errorf("%d failing polls, want 3", got)
	}
}

func TestWaitNotFoundAndContext(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(1))
	c := flowClient(t, srv)
	if _, err := c.Wait(context.Background(), KindVideo, "nope", WithExpected(time.Second), WithTimeScale(100)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: err = %v, want ErrNotFound", err)
	}
	cr, err := c.Create(context.Background(), ToolTextToVideo, map[string]any{"end_seconds": 5, "style": map[string]any{"prompt": "a dog"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p, err := c.Wait(ctx, cr.Kind, cr.ID, WithExpected(time.Second), WithTimeScale(10))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if p == nil || p.Status.Terminal() {
		t.Fatalf("want the last non-terminal project, got %+v", p)
	}
	if _, err := c.Wait(context.Background(), "bogus", "x"); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("bad kind: %v", err)
	}
}
