package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

// config is one crash run.
type config struct {
	Bin      string        // hourglass binary
	Dir      string        // work folder: database, storage, logs
	DB       string        // "sqlite" or a postgres:// DSN
	Jobs     int           // jobs submitted during the kill phase
	Kills    int           // kill -9 count
	MinGap   time.Duration // time between a restart and the next kill
	MaxGap   time.Duration
	Speed    float64 // emulator speed
	Workers  int     // serve --workers
	Clients  int     // concurrent submitters
	Settle   time.Duration
	Seed     uint64
	Tools    []string
	Progress io.Writer
	// FullDisk puts the SQLite database, the create journal and the
	// outputs on a tmpfs of DiskSize bytes that a ballast file fills during
	// the middle third of the kills (fulldisk.go).
	FullDisk bool
	DiskSize int64
}

// report is what a run shows.
type report struct {
	DB              string
	Jobs, Kills     int
	Starts          int
	Duration        time.Duration
	KillPhase       time.Duration
	SettleTime      time.Duration
	SubmitRetries   int            // POSTs repeated with the same idempotency key after a failure
	ByStatus        map[string]int // terminal states
	Outputs         int            // outputs verified (size + sha256: API, file, upstream bytes)
	UpstreamCreates int            // the emulator's count
	WithUpstreamID  int            // jobs that recorded an upstream id
	UnknownOutcome  int            // create_outcome_unknown jobs
	Orphans         int            // creates with no recorded id (≤ UnknownOutcome)
	Duplicates      int            // creates beyond one per job: must be 0
	WebhooksFailed  int            // emulator deliveries that failed (gateway down), retried
	InFlight        map[string]int // distinct jobs found non-terminal at a kill, by status then
	Interrupted     map[string]int // distinct jobs whose lease a killed process held, by status
	MaxInFlight     int            // most non-terminal jobs at one kill
	Problems        []string

	// Full-disk run only.
	FullDisk       bool
	FullFor        time.Duration // how long the disk was full
	KillsWhileFull int
	Ballast        int64 // bytes written to fill the disk
	HeldCreates    int   // distinct jobs whose upstream-id save failed (held)
	Replayed       int   // distinct jobs replayed from the create journal
	HeldOrphans    int   // held creates whose id never reached the job: must be 0
}

func (r *report) problem(format string, args ...any) {
	if len(r.Problems) < 50 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// defaultTools are tools of each kind whose example bodies the emulator
// completes; at speed 50 they take 0.1 s (images) to 3.5 s (talking photo).
var defaultTools = []string{"ai-image-generator", "image-background-remover", "face-swap-photo", "ai-headshot-generator",
	"ai-voice-generator", "text-to-video", "image-to-video", "ai-talking-photo"}

const secret = "whsec_crash_test"

// run does one crash run: emulator process, gateway process killed and
// restarted cfg.Kills times under load, then checks every job.
func run(ctx context.Context, cfg config) (*report, error) {
	if cfg.Tools == nil {
		cfg.Tools = defaultTools
	}
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	emuAddr, err := gwproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	gwAddr, err := gwproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	dbURL := cfg.DB
	rep := &report{DB: "sqlite", Jobs: cfg.Jobs, ByStatus: map[string]int{}, InFlight: map[string]int{}, Interrupted: map[string]int{}}
	if dbURL == "sqlite" {
		dbURL = "sqlite://" + filepath.Join(cfg.Dir, "hourglass.db")
	} else {
		rep.DB = "postgres"
	}
	storage := filepath.Join(cfg.Dir, "outputs")
	small := filepath.Join(cfg.Dir, "small")
	if cfg.FullDisk {
		if rep.DB != "sqlite" {
			return nil, errors.New("-full-disk runs on SQLite only (the database must be on the small disk)")
		}
		unmount, err := mountTmpfs(small, cfg.DiskSize)
		if err != nil {
			return nil, err
		}
		defer unmount()
		rep.FullDisk = true
		dbURL = "sqlite://" + filepath.Join(small, "hourglass.db") // the journal goes beside it
		storage = filepath.Join(small, "outputs")
	}

	emu, err := gwproc.StartEmulator(cfg.Bin, emuAddr, cfg.Speed, "http://"+gwAddr+"/hooks/magichour", secret,
		filepath.Join(cfg.Dir, "emulator"), "--webhook-attempts", "8", "--output-size", "0")
	if err != nil {
		return nil, err
	}
	defer emu.Stop(5 * time.Second)

	gw, err := gwproc.StartGateway(gwproc.GatewayConfig{Bin: cfg.Bin, Addr: gwAddr, DB: dbURL, Storage: "file://" + storage,
		Secret: secret, UpstreamURL: emu.URL, Workers: cfg.Workers, LogPrefix: filepath.Join(cfg.Dir, "gateway")})
	if cfg.FullDisk {
		gw.Cfg.ReadyPath = "/healthz" // not ready while full, by design
	}
	if err != nil {
		return nil, err
	}
	var gwMu sync.Mutex // guards gw.Proc across restarts
	defer func() { gwMu.Lock(); gw.Stop(10 * time.Second); gwMu.Unlock() }()
	cl := gwproc.NewClient(gw.URL, gw.TenantKey, cfg.Clients)
	dbr, err := gwproc.OpenDB(dbURL) // read-only: what was in flight at each kill
	if err != nil {
		return nil, err
	}
	defer dbr.Close()

	start := time.Now()
	// Kill schedule: the submissions are spread over its expected length.
	gaps := make([]time.Duration, cfg.Kills)
	var total time.Duration
	for i := range gaps {
		gaps[i] = cfg.MinGap + time.Duration(rng.Int64N(int64(cfg.MaxGap-cfg.MinGap)+1))
		total += gaps[i]
	}
	interval := total / time.Duration(max(cfg.Jobs, 1))

	// Submitters: every job has an idempotency key; a failed POST (the
	// gateway was killed) is repeated with the same key until it answers.
	keys := make([]string, cfg.Jobs)
	ids := make([]string, cfg.Jobs)
	tools := make([]string, cfg.Jobs)
	var retries int
	var subMu sync.Mutex
	var subErr error
	next := make(chan int)
	var subWG sync.WaitGroup
	for range cfg.Clients {
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			for i := range next {
				tool := tools[i]
				params := catalog.Lookup(tool).ExampleBody()
				deadline := time.Now().Add(2 * time.Minute)
				for {
					j, code, err := cl.Submit(ctx, tool, params, keys[i])
					if err == nil {
						subMu.Lock()
						if ids[i] != "" && ids[i] != j.ID {
							subErr = fmt.Errorf("idempotency key %s returned %s then %s", keys[i], ids[i], j.ID)
						}
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
					subMu.Lock()
					retries++
					subMu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	runID := fmt.Sprintf("%x", rng.Uint32())
	for i := range keys {
		keys[i] = fmt.Sprintf("crash-%s-%d", runID, i)
		tools[i] = cfg.Tools[i%len(cfg.Tools)]
	}
	feedDone := gwproc.Feed(ctx, len(keys), interval, next)

	// Killer: kill -9 at random moments, restart on the same database and
	// storage at once. What was in flight is read from the database right
	// after each kill (a job stays in a status across kills: counted once).
	seen := map[string]bool{}
	var fullSince time.Time
	for k, gap := range gaps {
		if cfg.FullDisk && k == cfg.Kills/3 {
			// Slow creates for a moment, so some are in flight when the disk
			// fills under them (their save then fails: held, not orphaned).
			if err := setLatency(ctx, emu.URL, 1500*time.Millisecond); err != nil {
				return nil, err
			}
			time.Sleep(1200 * time.Millisecond)
			n, err := fillDisk(small)
			if err != nil {
				return nil, fmt.Errorf("fill the disk: %w", err)
			}
			if err := setLatency(ctx, emu.URL, 0); err != nil {
				return nil, err
			}
			time.Sleep(2 * time.Second) // the slow creates answer (their saves fail) before the next kill
			rep.Ballast, fullSince = n, time.Now()
			logf("  [%s] disk full: %d MiB of ballast, %d bytes free", rep.DB, n>>20, diskFree(small))
		}
		if cfg.FullDisk && k == 2*cfg.Kills/3 && !fullSince.IsZero() {
			if err := freeDisk(small); err != nil {
				return nil, fmt.Errorf("free the disk: %w", err)
			}
			rep.FullFor, fullSince = time.Since(fullSince), time.Time{}
			logf("  [%s] space back after %v", rep.DB, rep.FullFor.Round(time.Millisecond))
		}
		select {
		case <-time.After(gap):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		gwMu.Lock()
		gw.Kill()
		rep.Kills++
		if !fullSince.IsZero() {
			rep.KillsWhileFull++
		}
		if open, err := dbr.Open(ctx); err == nil {
			rep.MaxInFlight = max(rep.MaxInFlight, len(open))
			for _, j := range open {
				if !seen[j.ID+j.Status] {
					seen[j.ID+j.Status] = true
					rep.InFlight[j.Status]++
					if j.Leased {
						rep.Interrupted[j.Status]++
					}
				}
			}
		}
		err := gw.Restart()
		gwMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("restart after kill %d: %w", k+1, err)
		}
		logf("  [%s] kill %d/%d after %v; restarted", rep.DB, k+1, cfg.Kills, gap.Round(time.Millisecond))
	}
	if !fullSince.IsZero() { // fewer than 3 kills: free it now
		_ = freeDisk(small)
		rep.FullFor = time.Since(fullSince)
	}
	<-feedDone
	subWG.Wait()
	rep.KillPhase = time.Since(start)
	rep.SubmitRetries = retries
	if subErr != nil {
		return nil, subErr
	}

	// Settle: every job must reach a terminal state. Jobs held by a killed
	// process wait for its lease to expire (30s by default).
	settleStart := time.Now()
	var jobs []gwproc.Job
	for {
		jobs, err = cl.List(ctx, "")
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
			counts := map[string]int{}
			for _, j := range jobs {
				counts[j.Status]++
			}
			rep.problem("%d jobs not terminal %v after the kills (statuses %v)", open, cfg.Settle, counts)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	rep.SettleTime = time.Since(settleStart)
	rep.Duration = time.Since(start)
	rep.Starts = gw.Starts

	// No job lost, none doubled: every id returned by POST exists, and
	// each idempotency key has exactly one job.
	byID := map[string]gwproc.Job{}
	perKey := map[string]int{}
	for _, j := range jobs {
		byID[j.ID] = j
		perKey[j.IdempotencyKey]++
	}
	for i, id := range ids {
		if _, ok := byID[id]; !ok {
			rep.problem("job %s (key %s) returned by POST /api/jobs is missing", id, keys[i])
		}
		if perKey[keys[i]] != 1 {
			rep.problem("idempotency key %s has %d jobs", keys[i], perKey[keys[i]])
		}
	}
	if len(jobs) != cfg.Jobs {
		rep.problem("%d jobs in the gateway, %d submitted", len(jobs), cfg.Jobs)
	}

	// Terminal states, outputs, upstream ids.
	upstream := map[string]string{}
	for _, j := range jobs {
		rep.ByStatus[j.Status]++
		if j.UpstreamID != "" {
			rep.WithUpstreamID++
			if other, dup := upstream[j.UpstreamID]; dup {
				rep.problem("jobs %s and %s share upstream project %s", other, j.ID, j.UpstreamID)
			}
			upstream[j.UpstreamID] = j.ID
		}
		switch j.Status {
		case "create_outcome_unknown":
			if j.UpstreamID == "" {
				rep.UnknownOutcome++
			}
		case "stored":
			full, err := cl.Job(ctx, j.ID) // the list does not carry outputs
			if err != nil {
				rep.problem("get %s: %v", j.ID, err)
				continue
			}
			n, err := verifyOutputs(ctx, cl, emu.URL, storage, *full)
			rep.Outputs += n
			if err != nil {
				rep.problem("job %s (%s): %v", j.ID, j.Tool, err)
			}
		case "error":
			msg := ""
			if j.Error != nil {
				msg = j.Error.Code + ": " + j.Error.Message
			}
			rep.problem("job %s (%s) ended in error after %d attempts: %s", j.ID, j.Tool, j.Attempts, msg)
		case "canceled":
			rep.problem("job %s (%s) canceled (nothing cancels in this test)", j.ID, j.Tool)
		}
	}

	// Exactly-once create: the emulator counts every create it received.
	// Each job with an upstream id accounts for one; a
	// create_outcome_unknown job without an id for at most one (its create
	// may or may not have arrived). Anything beyond is a second create.
	st, err := emu.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("emulator stats: %w", err)
	}
	rep.UpstreamCreates = st.Creates
	rep.WebhooksFailed = st.WebhooksFailed
	rep.Orphans = st.Creates - rep.WithUpstreamID
	rep.Duplicates = max(0, rep.Orphans-rep.UnknownOutcome)
	if rep.Duplicates > 0 {
		rep.problem("%d upstream creates beyond one per job (creates %d, jobs with an upstream id %d, create_outcome_unknown without id %d)",
			rep.Duplicates, st.Creates, rep.WithUpstreamID, rep.UnknownOutcome)
	}
	if cfg.FullDisk {
		held, replayed := heldStats(filepath.Join(cfg.Dir, "gateway"))
		rep.HeldCreates, rep.Replayed = len(held), len(replayed)
		for _, j := range jobs {
			if held[j.ID] && j.UpstreamID == "" {
				rep.HeldOrphans++
				rep.problem("job %s: its create's save failed and its upstream id was never recorded (%s)", j.ID, j.Status)
			}
		}
	}
	if rep.Orphans < 0 {
		rep.problem("emulator counted %d creates but %d jobs have an upstream id", st.Creates, rep.WithUpstreamID)
	}
	return rep, nil
}

// verifyOutputs checks every output of a stored job three ways: the bytes
// served by the gateway, the file in storage (sha256 recomputed), and the
// bytes the emulator serves for the upstream project; all must match the
// size and sha256 the job records.
func verifyOutputs(ctx context.Context, cl *gwproc.Client, upstream, storage string, j gwproc.Job) (int, error) {
	if len(j.Outputs) == 0 {
		return 0, errors.New("stored with no outputs")
	}
	urls, err := gwproc.UpstreamDownloads(ctx, upstream, j.Kind, j.UpstreamID)
	if err != nil {
		return 0, fmt.Errorf("upstream project %s: %w", j.UpstreamID, err)
	}
	if len(urls) != len(j.Outputs) {
		return 0, fmt.Errorf("%d outputs, upstream project has %d downloads", len(j.Outputs), len(urls))
	}
	// Storage keys: <tenant>/<shard>/<job>-<n><ext> (older gateways:
	// <tenant>/<job>/<n><ext>).
	files, _ := filepath.Glob(filepath.Join(storage, "*", "*", j.ID+"-*"))
	old, _ := filepath.Glob(filepath.Join(storage, "*", j.ID, "*"))
	files = append(files, old...)
	sort.Strings(files)
	n := 0
	for i, o := range j.Outputs {
		if !o.Stored || o.Size <= 0 || len(o.SHA256) != 64 {
			return n, fmt.Errorf("output %d not stored: %+v", o.Index, o)
		}
		served, err := cl.Output(ctx, j.ID, o.Index)
		if err != nil {
			return n, err
		}
		if int64(len(served)) != o.Size || sum(served) != o.SHA256 {
			return n, fmt.Errorf("output %d: gateway served %d bytes sha %s; job records %d %s", o.Index, len(served), sum(served), o.Size, o.SHA256)
		}
		var file string
		for _, f := range files {
			base := strings.TrimPrefix(filepath.Base(f), j.ID+"-")
			if strings.HasPrefix(base, fmt.Sprintf("%d.", o.Index)) || base == fmt.Sprint(o.Index) {
				file = f
			}
		}
		disk, err := os.ReadFile(file)
		if file == "" || err != nil {
			return n, fmt.Errorf("output %d: no file in storage (%v): %v", o.Index, files, err)
		}
		if int64(len(disk)) != o.Size || sum(disk) != o.SHA256 {
			return n, fmt.Errorf("output %d: file %s has %d bytes sha %s; job records %d %s", o.Index, file, len(disk), sum(disk), o.Size, o.SHA256)
		}
		orig, err := gwproc.Fetch(ctx, urls[i])
		if err != nil {
			return n, fmt.Errorf("output %d: upstream download: %w", o.Index, err)
		}
		if int64(len(orig)) != o.Size || sum(orig) != o.SHA256 {
			return n, fmt.Errorf("output %d: emulator serves %d bytes sha %s; job records %d %s", o.Index, len(orig), sum(orig), o.Size, o.SHA256)
		}
		n++
	}
	return n, nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// String prints the summary.
func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "crash test on %s: %d jobs, %d kill -9 (%d starts) in %v, settled in %v, total %v\n",
		r.DB, r.Jobs, r.Kills, r.Starts, r.KillPhase.Round(100*time.Millisecond), r.SettleTime.Round(100*time.Millisecond), r.Duration.Round(100*time.Millisecond))
	states := make([]string, 0, len(r.ByStatus))
	for s := range r.ByStatus {
		states = append(states, s)
	}
	slices.Sort(states)
	fmt.Fprintf(&b, "  in flight at the kills (distinct jobs by status then): %s; at most %d at one kill\n", counts(r.InFlight), r.MaxInFlight)
	fmt.Fprintf(&b, "  work interrupted by a kill (job leased by the killed process): %s\n", counts(r.Interrupted))
	fmt.Fprintf(&b, "  terminal states:")
	for _, s := range states {
		fmt.Fprintf(&b, " %s=%d", s, r.ByStatus[s])
	}
	fmt.Fprintf(&b, "\n  outputs verified (size+sha256: gateway bytes, storage file, emulator bytes): %d\n", r.Outputs)
	fmt.Fprintf(&b, "  upstream creates: %d = %d jobs with an upstream id + %d orphan(s) (create_outcome_unknown without id: %d)\n",
		r.UpstreamCreates, r.WithUpstreamID, r.Orphans, r.UnknownOutcome)
	fmt.Fprintf(&b, "  duplicate creates: %d\n", r.Duplicates)
	if r.FullDisk {
		fmt.Fprintf(&b, "  full disk: %d MiB ballast, full for %v, %d kill -9 while full; creates held after a failed save: %d (replayed from the journal by a later process: %d), orphaned by a failed save: %d\n",
			r.Ballast>>20, r.FullFor.Round(100*time.Millisecond), r.KillsWhileFull, r.HeldCreates, r.Replayed, r.HeldOrphans)
	}
	fmt.Fprintf(&b, "  POSTs retried with the same idempotency key: %d; webhook deliveries failed while down (retried): %d\n", r.SubmitRetries, r.WebhooksFailed)
	if len(r.Problems) == 0 {
		fmt.Fprintf(&b, "  OK: no job lost, all terminal, all outputs verified, no second create\n")
	} else {
		fmt.Fprintf(&b, "  PROBLEMS (%d):\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "    - %s\n", p)
		}
	}
	return b.String()
}

// counts formats a histogram as "a=1 b=2", sorted by key.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
