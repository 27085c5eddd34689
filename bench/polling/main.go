// Command polling measures what it costs to learn that Magic Hour jobs have
// finished: GETs per job and detection lag, for four strategies run one
// after the other against ONE in-process emulator at compressed time.
//
//	go run ./bench/polling [-jobs 200] [-speed 100] [-seed 1]
//
// Strategies:
//
//   - adaptive: magichour.Client.Wait with WithTool and WithTimeScale(speed)
//   - fixed-0.5s: GET, then every 0.5 s (the official Python and Node SDKs)
//   - fixed-2s: GET, then every 2 s (the official mh CLI)
//   - webhook: magichour.WebhookWaiter fed by the emulator's webhooks
//     (default fallback poll)
//
// Fixed intervals are divided by speed like the emulator's durations.
//
// Workload: jobs round-robin over the 27 create tools (so each tool gets
// jobs/27, video tools included), each with the spec's example body; the
// emulator draws each duration as p50 × exp(0.35·N(0,1)) from
// processing-times.tsv. All jobs of a strategy are created at once and
// waited for concurrently.
//
// Completion time: the emulator's project JSON does not expose when a job
// ended, so the program wraps the emulator's Clock (emulator.WithClock, a
// public option) and records the deadline of every scheduler timer; the
// scheduler fires each lifecycle event at its exact time, and the
// completed webhook of a job identifies the latest timer deadline before
// its arrival as the job's end. Lags are reported in uncompressed seconds
// (measured × speed) for the polling strategies; webhook lag is a network
// latency that time compression does not shrink, so it is also given in
// real milliseconds.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

const secret = "whsec_bench"

// recClock is the wall clock, recording scheduler timer deadlines.
type recClock struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (c *recClock) Now() time.Time { return time.Now() }

func (c *recClock) NewTimer(d time.Duration) emulator.Timer {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, time.Now().Add(d))
	c.mu.Unlock()
	return realTimer{time.NewTimer(d)}
}

// endBefore returns the latest deadline not after t.
func (c *recClock) endBefore(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best time.Time
	for _, d := range c.deadlines {
		if !d.After(t) && d.After(best) {
			best = d
		}
	}
	return best
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// job is one measured job.
type job struct {
	tool     magichour.Tool
	id       string
	created  time.Time
	ended    time.Time // from the webhook + clock
	detected time.Time
	status   magichour.Status
	err      error
}

type result struct {
	Strategy     string  `json:"strategy"`
	Jobs         int     `json:"jobs"`
	GETs         int     `json:"gets"`
	GETsPerJob   float64 `json:"gets_per_job"`
	LagP50       float64 `json:"lag_p50_s"`
	LagP95       float64 `json:"lag_p95_s"`
	LagRealP50ms float64 `json:"lag_real_p50_ms"`
	LagRealP95ms float64 `json:"lag_real_p95_ms"`
	WithinBound  float64 `json:"within_bound"` // share of jobs with lag <= max(1s, 10% of duration)
	NormP95      float64 `json:"norm_lag_p95"` // p95 of lag / max(1s, 10% of duration)
	ExpectedGETs int     `json:"expected_gets,omitempty"`
	Failures     int     `json:"failures"`
}

func main() {
	jobs := flag.Int("jobs", 200, "jobs per strategy")
	speed := flag.Float64("speed", 100, "time compression of the emulator and the clients")
	seed := flag.Int64("seed", 1, "emulator seed")
	only := flag.String("only", "", "run only this strategy")
	asJSON := flag.Bool("json", false, "print JSON instead of a table")
	flag.Parse()
	if err := run(*jobs, *speed, *seed, *only, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "polling:", err)
		os.Exit(1)
	}
}

func run(n int, speed float64, seed int64, only string, asJSON bool) error {
	ctx := context.Background()
	clock := &recClock{}

	// Webhook endpoint: records arrivals, feeds the waiter.
	var (
		arrMu   sync.Mutex
		arrived = map[string]time.Time{}
		waiter  *magichour.WebhookWaiter
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hook := webhook.NewHandler(secret, func(_ context.Context, e *webhook.Event) error {
		now := time.Now()
		if e.Type.Phase() != webhook.PhaseStarted {
			arrMu.Lock()
			if _, ok := arrived[e.Payload.ID]; !ok {
				arrived[e.Payload.ID] = now
			}
			arrMu.Unlock()
		}
		if waiter != nil {
			waiter.Deliver(e)
		}
		return nil
	})
	hsrv := &http.Server{Handler: hook}
	go hsrv.Serve(ln)
	defer hsrv.Close()

	srv, err := emulator.Listen(ctx, "127.0.0.1:0",
		emulator.WithSpeed(speed), emulator.WithSeed(seed), emulator.WithClock(clock), emulator.WithCredits(1<<40),
		emulator.WithWebhookURL("http://"+ln.Addr().String()), emulator.WithWebhookSecret(secret))
	if err != nil {
		return err
	}
	defer srv.Close()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL),
		magichour.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		return err
	}
	waiter = magichour.NewWebhookWaiter(c)

	tools := magichour.Tools()
	bodies := map[magichour.Tool]map[string]any{}
	for _, t := range tools {
		bodies[t] = exampleBody(t)
	}

	fixed := func(interval time.Duration) func(context.Context, magichour.Kind, string, magichour.Tool) (*magichour.Project, error) {
		return func(ctx context.Context, kind magichour.Kind, id string, _ magichour.Tool) (*magichour.Project, error) {
			d := time.Duration(float64(interval) / speed)
			for {
				p, err := c.GetProject(ctx, kind, id)
				if err != nil {
					return nil, err
				}
				if p.Status.Terminal() {
					return p, p.Err()
				}
				time.Sleep(d)
			}
		}
	}
	strategies := []struct {
		name     string
		interval time.Duration
		wait     func(context.Context, magichour.Kind, string, magichour.Tool) (*magichour.Project, error)
	}{
		{"adaptive", 0, func(ctx context.Context, kind magichour.Kind, id string, tool magichour.Tool) (*magichour.Project, error) {
			return c.Wait(ctx, kind, id, magichour.WithTool(tool), magichour.WithTimeScale(speed))
		}},
		{"fixed-0.5s", 500 * time.Millisecond, fixed(500 * time.Millisecond)},
		{"fixed-2s", 2 * time.Second, fixed(2 * time.Second)},
		{"webhook", 0, func(ctx context.Context, kind magichour.Kind, id string, tool magichour.Tool) (*magichour.Project, error) {
			return waiter.Wait(ctx, kind, id, magichour.WithTool(tool), magichour.WithTimeScale(speed))
		}},
	}

	var results []result
	for _, s := range strategies {
		if only != "" && s.name != only {
			continue
		}
		js := make([]*job, n)
		var wg sync.WaitGroup
		for i := range js {
			tool := tools[i%len(tools)]
			cr, err := c.Create(ctx, tool, bodies[tool])
			if err != nil {
				return fmt.Errorf("create %s: %w", tool, err)
			}
			j := &job{tool: tool, id: cr.ID, created: time.Now()}
			js[i] = j
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := s.wait(ctx, cr.Kind, cr.ID, tool)
				j.detected = time.Now()
				j.err = err
				if p != nil {
					j.status = p.Status
				}
			}()
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond) // let the last webhooks land
		stats := srv.Emulator.Stats()
		r := result{Strategy: s.name, Jobs: n}
		var lags, real, norm []float64
		within := 0
		for _, j := range js {
			r.GETs += stats.Polls[j.id]
			arrMu.Lock()
			a, ok := arrived[j.id]
			arrMu.Unlock()
			if j.err != nil || !ok {
				r.Failures++
				continue
			}
			j.ended = clock.endBefore(a)
			lag := j.detected.Sub(j.ended).Seconds()
			dur := j.ended.Sub(j.created).Seconds() * speed
			ul := lag * speed
			lags = append(lags, ul)
			real = append(real, lag*1000)
			bound := math.Max(1, dur/10)
			norm = append(norm, ul/bound)
			if ul <= bound {
				within++
			}
			if s.interval > 0 { // what an ideal fixed poller would do
				r.ExpectedGETs += 1 + int(math.Ceil(dur/s.interval.Seconds()))
			}
		}
		r.GETsPerJob = float64(r.GETs) / float64(n)
		r.LagP50, r.LagP95 = pct(lags, 50), pct(lags, 95)
		r.LagRealP50ms, r.LagRealP95ms = pct(real, 50), pct(real, 95)
		r.NormP95 = pct(norm, 95)
		if len(lags) > 0 {
			r.WithinBound = float64(within) / float64(len(lags))
		}
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "%s done\n", s.name)
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	printTable(results, n, speed)
	return nil
}

func printTable(rs []result, n int, speed float64) {
	fmt.Printf("workload: %d jobs per strategy, round-robin over %d tools, emulator speed %gx\n\n", n, len(magichour.Tools()), speed)
	fmt.Printf("%-11s %7s %8s %9s %9s %9s %12s %12s %8s\n", "strategy", "GETs", "GET/job", "lag p50", "lag p95", "in bound", "norm p95", "real p50", "fail")
	by := map[string]result{}
	for _, r := range rs {
		by[r.Strategy] = r
		fmt.Printf("%-11s %7d %8.2f %8.2fs %8.2fs %8.1f%% %12.2f %10.1fms %8d\n", r.Strategy, r.GETs, r.GETsPerJob, r.LagP50, r.LagP95, 100*r.WithinBound, r.NormP95, r.LagRealP50ms, r.Failures)
	}
	fmt.Println()
	for _, r := range rs {
		if r.ExpectedGETs > 0 {
			fmt.Printf("%s: an ideal poller would have made %d GETs (measured %d)\n", r.Strategy, r.ExpectedGETs, r.GETs)
		}
	}
	a, okA := by["adaptive"]
	f, okF := by["fixed-2s"]
	if okA && okF && a.GETs > 0 {
		ratio := float64(f.GETs) / float64(a.GETs)
		fmt.Printf("goal adaptive: %.1fx fewer GETs than fixed-2s (want >= 4): %s\n", ratio, verdict(ratio >= 4))
	}
	if okA {
		fmt.Printf("goal adaptive: p95 of lag/max(1s, 10%% of duration) = %.2f (want <= 1): %s\n", a.NormP95, verdict(a.NormP95 <= 1))
	}
	if w, ok := by["webhook"]; ok {
		fmt.Printf("goal webhook: %.3f GET/job (want < 0.1): %s; p50 lag %.1f ms real (want < 50): %s\n",
			w.GETsPerJob, verdict(w.GETsPerJob < 0.1), w.LagRealP50ms, verdict(w.LagRealP50ms < 50))
	}
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// exampleBody is the spec's example request of a tool, made valid without
// uploads (face mappings need a face detection first: dropped).
func exampleBody(t magichour.Tool) map[string]any {
	body := catalog.Lookup(string(t)).ExampleBody()
	if assets, ok := body["assets"].(map[string]any); ok {
		delete(assets, "face_mappings")
	}
	body["name"] = "bench"
	return body
}
