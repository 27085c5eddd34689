package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
	"github.com/hourglasshq/hourglass/gateway/storage"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

// config is one multi-replica run.
type config struct {
	Bin, S3Bin string // hourglass and versitygw binaries
	Dir        string // work folder: one sub-folder per replica, S3 root, logs
	DSN        string // PostgreSQL (a fresh schema)
	Replicas   int
	Jobs       int
	Kills      int           // kill -9 of a random replica (0: none, a throughput or rate run)
	MinGap     time.Duration // between kills
	MaxGap     time.Duration
	S3Restart  bool // kill -9 and restart the S3 server once mid-run
	Speed      float64
	Workers    int
	Clients    int
	RPS        float64 // serve --upstream-rps (negative: unlimited)
	// LogCalls puts the call-logging proxy between the gateways and the
	// emulator. The gateways then download outputs through it too (it
	// rewrites the emulator's address in the projects it relays: the
	// download guard trusts only the upstream's own host), so webhooks,
	// whose signed bodies cannot be rewritten, are refused by the front and
	// jobs are tracked by polling.
	LogCalls bool
	Settle   time.Duration
	Seed     uint64
	Progress io.Writer
}

type report struct {
	Replicas, Jobs, Kills, S3Restarts int
	Duration, SettleTime              time.Duration
	JobsPerSec                        float64
	SubmitRetries                     int
	ByStatus                          map[string]int
	Outputs                           int // outputs verified: S3 object, emulator bytes, every replica's download
	UpstreamCreates, Duplicates       int
	UnknownOutcome                    int
	MaxCallsPerSec                    int // upstream calls in the busiest 1-second window (sliding, 10 ms steps)
	UpstreamCalls                     int
	Problems                          []string
}

func (r *report) problem(format string, args ...any) {
	if len(r.Problems) < 50 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replicas %d, jobs %d, kills %d, S3 restarts %d, %v (settle %v), %.1f jobs/s\n",
		r.Replicas, r.Jobs, r.Kills, r.S3Restarts, r.Duration.Round(time.Millisecond), r.SettleTime.Round(time.Millisecond), r.JobsPerSec)
	keys := make([]string, 0, len(r.ByStatus))
	for k := range r.ByStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var st []string
	for _, k := range keys {
		st = append(st, fmt.Sprintf("%s %d", k, r.ByStatus[k]))
	}
	fmt.Fprintf(&b, "terminal: %s; submit retries %d\n", strings.Join(st, ", "), r.SubmitRetries)
	fmt.Fprintf(&b, "outputs verified (S3 object + emulator bytes + download from each replica): %d\n", r.Outputs)
	fmt.Fprintf(&b, "upstream creates %d, duplicates %d, create_outcome_unknown without id %d\n", r.UpstreamCreates, r.Duplicates, r.UnknownOutcome)
	fmt.Fprintf(&b, "upstream calls %d, busiest second %d\n", r.UpstreamCalls, r.MaxCallsPerSec)
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "PROBLEM: %s\n", p)
	}
	return b.String()
}

const secret = "whsec_replicas_test"

var tools = []string{"ai-image-generator", "image-background-remover", "face-swap-photo", "ai-headshot-generator",
	"ai-voice-generator", "text-to-video"}

// callLog records when upstream calls passed the bench's proxy in front
// of the emulator (every gateway's --base-url).
type callLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *callLog) add(t time.Time) { l.mu.Lock(); l.at = append(l.at, t); l.mu.Unlock() }

// busiest returns the most calls in any 1-second window.
func (l *callLog) busiest() (int, int) {
	l.mu.Lock()
	at := append([]time.Time(nil), l.at...)
	l.mu.Unlock()
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	best, lo := 0, 0
	for hi := range at {
		for at[hi].Sub(at[lo]) >= time.Second {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best, len(at)
}

// s3Server is a versitygw process on a folder; restartable.
type s3Server struct {
	bin, root, addr, logPrefix string
	p                          *gwproc.Proc
}

func (s *s3Server) start() error {
	p, err := gwproc.Start(s.bin, []string{"--port", s.addr, "--quiet", "posix", s.root},
		[]string{"ROOT_ACCESS_KEY_ID=hourglass", "ROOT_SECRET_ACCESS_KEY=hourglass-secret"}, s.logPrefix)
	if err != nil {
		return err
	}
	s.p = p
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + s.addr + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		if p.Exited() {
			return errors.New("versitygw exited at start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("versitygw did not answer")
}

func (s *s3Server) url() string {
	return "s3://hourglass?endpoint=http://" + s.addr + "&region=us-east-1&use_path_style=true"
}

// replica is one `hourglass serve` with its own empty working folder.
type replica struct {
	mu sync.Mutex
	gw *gwproc.Gateway
	up atomic.Bool
}

// run starts the S3 server, the emulator, a webhook front and cfg.Replicas
// gateways on one database and bucket, submits cfg.Jobs jobs spread over
// the replicas while killing random replicas, then checks everything.
func run(ctx context.Context, cfg config) (*report, error) {
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	rep := &report{Replicas: cfg.Replicas, Jobs: cfg.Jobs, ByStatus: map[string]int{}}

	s3addr, err := gwproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	s3 := &s3Server{bin: cfg.S3Bin, root: filepath.Join(cfg.Dir, "s3"), addr: s3addr, logPrefix: filepath.Join(cfg.Dir, "s3")}
	if err := os.MkdirAll(filepath.Join(s3.root, "hourglass"), 0o750); err != nil {
		return nil, err
	}
	os.Setenv("AWS_ACCESS_KEY_ID", "hourglass")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "hourglass-secret")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if err := s3.start(); err != nil {
		return nil, err
	}
	defer func() { s3.p.Stop(5 * time.Second) }()
	bucket, err := storage.Open(ctx, s3.url())
	if err != nil {
		return nil, err
	}
	defer bucket.(storage.Closer).Close()

	// The webhook front spreads Magic Hour's deliveries over the live
	// replicas (a load balancer's job); the upstream proxy logs calls.
	reps := make([]*replica, cfg.Replicas)
	addrs := make([]string, cfg.Replicas)
	for i := range reps {
		reps[i] = &replica{}
		if addrs[i], err = gwproc.FreeAddr(); err != nil {
			return nil, err
		}
	}
	var rr atomic.Uint64
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.LogCalls {
			http.Error(w, "webhooks off while calls are logged", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		for range cfg.Replicas {
			i := int(rr.Add(1)) % cfg.Replicas
			if !reps[i].up.Load() {
				continue
			}
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+addrs[i]+r.URL.RequestURI(), strings.NewReader(string(body)))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no replica up", http.StatusBadGateway)
	})}
	frontAddr, err := gwproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	go func() { _ = listenAndServe(front, frontAddr) }()
	defer front.Close()

	emuAddr, err := gwproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	emu, err := gwproc.StartEmulator(cfg.Bin, emuAddr, cfg.Speed, "http://"+frontAddr+"/hooks/magichour", secret,
		filepath.Join(cfg.Dir, "emulator"), "--webhook-attempts", "8", "--output-size", "0")
	if err != nil {
		return nil, err
	}
	defer emu.Stop(5 * time.Second)
	calls := &callLog{}
	target, _ := url.Parse(emu.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxyAddr, err := gwproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Request.URL.Path, "/v1/") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = []byte(strings.ReplaceAll(string(b), emuAddr, proxyAddr))
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			calls.add(time.Now())
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = listenAndServe(proxy, proxyAddr) }()
	defer proxy.Close()

	var adminKey, tenantKey string
	for i, rpl := range reps {
		dir := filepath.Join(cfg.Dir, fmt.Sprintf("replica%d", i))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		upstream := emu.URL
		if cfg.LogCalls {
			upstream = "http://" + proxyAddr
		}
		gc := gwproc.GatewayConfig{Bin: cfg.Bin, Addr: addrs[i], DB: cfg.DSN, Storage: s3.url(), Secret: secret,
			UpstreamURL: upstream, Workers: cfg.Workers, LogPrefix: filepath.Join(dir, "gateway"),
			Extra: []string{"--upstream-rps", fmt.Sprint(cfg.RPS), "--lease", "10s", "--journal-dir", filepath.Join(dir, "journal"),
				"--public-url", "http://" + frontAddr}}
		rpl.gw = &gwproc.Gateway{Cfg: gc, URL: "http://" + addrs[i], AdminKey: adminKey, TenantKey: tenantKey}
		if err := rpl.gw.Restart(); err != nil {
			return nil, fmt.Errorf("start replica %d: %w", i, err)
		}
		rpl.up.Store(true)
		adminKey, tenantKey = rpl.gw.AdminKey, rpl.gw.TenantKey
		defer func() { rpl.mu.Lock(); rpl.gw.Stop(10 * time.Second); rpl.mu.Unlock() }()
	}
	clients := make([]*gwproc.Client, cfg.Replicas)
	for i := range clients {
		clients[i] = gwproc.NewClient("http://"+addrs[i], tenantKey, cfg.Clients)
	}
	dbr, err := gwproc.OpenDB(cfg.DSN)
	if err != nil {
		return nil, err
	}
	defer dbr.Close()

	start := time.Now()
	keys := make([]string, cfg.Jobs)
	ids := make([]string, cfg.Jobs)
	runID := fmt.Sprintf("%x", rng.Uint32())
	var retries atomic.Int64
	var subMu sync.Mutex
	var subErr error
	next := make(chan int)
	var subWG sync.WaitGroup
	for c := range cfg.Clients {
		subWG.Go(func() {
			k := c
			for i := range next {
				tool := tools[i%len(tools)]
				deadline := time.Now().Add(2 * time.Minute)
				for {
					k++
					j, code, err := clients[k%cfg.Replicas].Submit(ctx, tool, catalog.Lookup(tool).ExampleBody(), keys[i])
					if err == nil {
						subMu.Lock()
						ids[i] = j.ID
						subMu.Unlock()
						break
					}
					if code >= 400 && code < 500 || ctx.Err() != nil || time.Now().After(deadline) {
						subMu.Lock()
						subErr = fmt.Errorf("submit %s: %w", keys[i], err)
						subMu.Unlock()
						break
					}
					retries.Add(1) // that replica is down: the next one
				}
			}
		})
	}
	for i := range keys {
		keys[i] = fmt.Sprintf("rep-%s-%d", runID, i)
	}
	var gaps []time.Duration
	var total time.Duration
	for range cfg.Kills {
		g := cfg.MinGap + time.Duration(rng.Int64N(int64(cfg.MaxGap-cfg.MinGap)+1))
		gaps = append(gaps, g)
		total += g
	}
	interval := time.Duration(0)
	if cfg.Kills > 0 {
		interval = total / time.Duration(max(cfg.Jobs, 1))
	}
	feedDone := gwproc.Feed(ctx, len(keys), interval, next)

	for k, gap := range gaps {
		select {
		case <-time.After(gap):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if cfg.S3Restart && k == len(gaps)/2 {
			s3.p.Kill()
			time.Sleep(500 * time.Millisecond) // S3 down for a moment
			if err := s3.start(); err != nil {
				return nil, fmt.Errorf("restart S3: %w", err)
			}
			rep.S3Restarts++
			logf("  S3 server killed and restarted")
		}
		i := rng.IntN(cfg.Replicas)
		rpl := reps[i]
		rpl.mu.Lock()
		rpl.up.Store(false)
		rpl.gw.Kill()
		rep.Kills++
		err := rpl.gw.Restart()
		rpl.up.Store(err == nil)
		rpl.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("restart replica %d after kill %d: %w", i, k+1, err)
		}
		logf("  kill %d/%d: replica %d after %v; restarted", k+1, cfg.Kills, i, gap.Round(time.Millisecond))
	}
	<-feedDone
	subWG.Wait()
	rep.SubmitRetries = int(retries.Load())
	if subErr != nil {
		return nil, subErr
	}

	settleStart := time.Now()
	var jobs []gwproc.Job
	for {
		jobs, err = clients[0].List(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		open := 0
		for _, j := range jobs {
			if !gwproc.Terminal(j.Status) {
				open++
			}
		}
		if open == 0 && len(jobs) >= cfg.Jobs {
			break
		}
		if time.Since(settleStart) > cfg.Settle {
			rep.problem("%d jobs not terminal %v after the load", open, cfg.Settle)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.SettleTime = time.Since(settleStart)
	rep.Duration = time.Since(start)
	var last time.Time
	for _, j := range jobs {
		if j.FinishedAt != nil && j.FinishedAt.After(last) {
			last = *j.FinishedAt
		}
	}
	if !last.IsZero() {
		rep.JobsPerSec = float64(len(jobs)) / last.Sub(start).Seconds()
	}
	rep.MaxCallsPerSec, rep.UpstreamCalls = calls.busiest()

	byID := map[string]gwproc.Job{}
	for _, j := range jobs {
		byID[j.ID] = j
	}
	for i, id := range ids {
		if _, ok := byID[id]; !ok {
			rep.problem("job %s (key %s) is missing", id, keys[i])
		}
	}
	if len(jobs) != cfg.Jobs {
		rep.problem("%d jobs in the gateway, %d submitted", len(jobs), cfg.Jobs)
	}
	withID := 0
	for _, j := range jobs {
		rep.ByStatus[j.Status]++
		if j.UpstreamID != "" {
			withID++
		}
		switch j.Status {
		case "stored":
			n, err := verify(ctx, dbr, bucket, clients, emu.URL, j)
			rep.Outputs += n
			if err != nil {
				rep.problem("job %s (%s): %v", j.ID, j.Tool, err)
			}
		case "create_outcome_unknown":
			if j.UpstreamID == "" {
				rep.UnknownOutcome++
			}
		default:
			rep.problem("job %s (%s) ended %s", j.ID, j.Tool, j.Status)
		}
	}
	st, err := emu.Stats(ctx)
	if err != nil {
		return nil, err
	}
	rep.UpstreamCreates = st.Creates
	rep.Duplicates = max(0, st.Creates-withID-rep.UnknownOutcome)
	if rep.Duplicates > 0 {
		rep.problem("%d duplicate upstream creates", rep.Duplicates)
	}
	return rep, nil
}

// verify checks every output of a stored job: the S3 object (read
// straight from the bucket), the emulator's bytes, and a download through
// every replica, all against the size and sha256 the job records.
func verify(ctx context.Context, db *gwproc.DB, bucket storage.Storage, clients []*gwproc.Client, upstream string, j gwproc.Job) (int, error) {
	full, err := clients[0].Job(ctx, j.ID)
	if err != nil {
		return 0, err
	}
	urls, err := gwproc.UpstreamDownloads(ctx, upstream, full.Kind, full.UpstreamID)
	if err != nil {
		return 0, err
	}
	if len(urls) != len(full.Outputs) || len(urls) == 0 {
		return 0, fmt.Errorf("%d outputs, upstream has %d", len(full.Outputs), len(urls))
	}
	n := 0
	for i, o := range full.Outputs {
		var key string
		if err := db.QueryRowContext(ctx, "SELECT storage_key FROM outputs WHERE job_id = $1 AND idx = $2", j.ID, o.Index).Scan(&key); err != nil {
			return n, fmt.Errorf("output %d key: %w", o.Index, err)
		}
		f, size, err := bucket.Open(ctx, key)
		if err != nil {
			return n, fmt.Errorf("output %d: S3 object %s: %w", o.Index, key, err)
		}
		obj, err := io.ReadAll(f)
		f.Close()
		if err != nil || size != o.Size || sum(obj) != o.SHA256 {
			return n, fmt.Errorf("output %d: S3 object %d bytes sha %s; job records %d %s (%v)", o.Index, len(obj), sum(obj), o.Size, o.SHA256, err)
		}
		orig, err := gwproc.Fetch(ctx, urls[i])
		if err != nil || sum(orig) != o.SHA256 {
			return n, fmt.Errorf("output %d: emulator bytes differ (%v)", o.Index, err)
		}
		for r, c := range clients {
			b, err := c.Output(ctx, j.ID, o.Index)
			if err != nil || int64(len(b)) != o.Size || sum(b) != o.SHA256 {
				return n, fmt.Errorf("output %d via replica %d: %d bytes (%v)", o.Index, r, len(b), err)
			}
		}
		n++
	}
	return n, nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
