// Command load measures the durable job gateway (`hourglass serve`) in one
// run, each part against a separate `hourglass emulate` process:
//
//  1. throughput: N small image jobs (ai-image-generator) submitted through
//     the native API by a few concurrent clients; jobs/s from the first
//     POST to the last job `stored` (outputs copied and verified), on
//     SQLite and on PostgreSQL, emulator at high speed;
//
//  2. memory: 10,000 long video jobs (video-to-video, p50 13 min) submitted
//     with the emulator at real speed so they all stay in flight; the
//     gateway's RSS and peak RSS (VmRSS, VmHWM from /proc/<pid>/status);
//
//  3. webhook ingest: signed `video.started` events for those in-flight
//     jobs POSTed to /hooks/magichour at a paced rate (1,000/s for 10 s);
//     latency p50/p99/max per request, measured from each request's
//     scheduled time (so a stalled gateway cannot hide queueing).
//
//     go run ./bench/gateway/load                        # everything, the gateway as a process
//     go run ./bench/gateway/load -only throughput -inprocess -cpuprofile cpu.out
//
// -inprocess runs gateway.New inside this program (configured as serve
// does) instead of the serve process, for CPU profiles. Progress is
// counted from the database directly (read-only), not through the API.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

const secret = "whsec_bench_load"

type options struct {
	bin, work                  string
	jobs, clients, workers     int
	speed                      float64
	inflight                   int
	hookRate                   int
	hookDuration               time.Duration
	inprocess                  bool
	upstreamRPS                string
	cpuprofile                 string
	throughputTool, flightTool string
}

func main() {
	var o options
	var dbs, only, memDB string
	var keep bool
	flag.StringVar(&o.bin, "bin", "", "hourglass binary (default: build ./cmd/hourglass)")
	flag.IntVar(&o.jobs, "jobs", 2000, "throughput: jobs submitted")
	flag.IntVar(&o.clients, "clients", 8, "concurrent submitting clients")
	flag.IntVar(&o.workers, "workers", 8, "serve --workers")
	flag.Float64Var(&o.speed, "speed", 50, "throughput: emulator speed (ai-image-generator p50 5 s / speed)")
	flag.StringVar(&o.throughputTool, "tool", "ai-image-generator", "throughput: tool")
	flag.IntVar(&o.inflight, "inflight", 10000, "memory: jobs kept in flight")
	flag.StringVar(&o.flightTool, "inflight-tool", "video-to-video", "memory: tool (long, emulator at speed 1)")
	flag.IntVar(&o.hookRate, "hook-rate", 1000, "webhook: events per second")
	flag.DurationVar(&o.hookDuration, "hook-duration", 10*time.Second, "webhook: how long to send")
	flag.StringVar(&dbs, "db", "sqlite,postgres", "throughput: databases")
	flag.StringVar(&memDB, "mem-db", "sqlite", "memory and webhook: database")
	flag.StringVar(&only, "only", "throughput,memory", "parts to run: throughput, memory (memory includes the webhook part)")
	flag.StringVar(&o.upstreamRPS, "upstream-rps", "-1", "serve --upstream-rps (negative: no limit; the default 10/s would cap the throughput at 10 jobs/s)")
	flag.BoolVar(&o.inprocess, "inprocess", false, "run the gateway in this process (gateway.New) instead of `hourglass serve`")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "with -inprocess: CPU profile of the throughput part")
	flag.BoolVar(&keep, "keep", false, "keep the work folder")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if o.work, err = os.MkdirTemp("", "hourglass-load-"); err != nil {
		fatal(err)
	}
	if keep {
		fmt.Println("work folder:", o.work)
	} else {
		defer os.RemoveAll(o.work)
	}
	if o.bin == "" {
		fmt.Println("building ./cmd/hourglass ...")
		if o.bin, err = gwproc.Build(ctx, o.work); err != nil {
			fatal(err)
		}
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if strings.Contains(only, "throughput") {
		fmt.Printf("\n== throughput: %d %s jobs, %d clients, --workers %d --upstream-rps %s, emulator speed %g ==\n", o.jobs, o.throughputTool, o.clients, o.workers, o.upstreamRPS, o.speed)
		fmt.Printf("%-9s %8s %10s %9s %9s %9s %9s %8s %8s %9s %7s\n", "db", "jobs", "submit/s", "wall s", "jobs/s", "p50 ms", "p99 ms", "gw CPU", "emu CPU", "peak RSS", "polled")
		for _, db := range strings.Split(dbs, ",") {
			if err := throughput(ctx, o, db); err != nil {
				fmt.Printf("%-9s %v\n", db, err)
			}
		}
	}
	if strings.Contains(only, "memory") {
		if err := memory(ctx, o, memDB); err != nil {
			fmt.Printf("memory: %v\n", err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "load:", err)
	os.Exit(1)
}

// target is a running gateway: a serve process or an in-process one.
type target struct {
	url, tenantKey string
	proc           *gwproc.Gateway
	stop           func()
}

// dbURL returns the database URL for db in dir, and a cleanup.
func dbURL(ctx context.Context, db, dir string) (string, func(), error) {
	switch db {
	case "sqlite":
		return "sqlite://" + filepath.Join(dir, "hourglass.db"), func() {}, nil
	case "postgres":
		return gwproc.Postgres(ctx, "hgbench")
	}
	return "", nil, fmt.Errorf("unknown db %q", db)
}

// startGateway runs the gateway against the emulator at upstream.
func startGateway(ctx context.Context, o options, addr, db, dir, upstream string) (*target, error) {
	storage := "file://" + filepath.Join(dir, "outputs")
	if !o.inprocess {
		g, err := gwproc.StartGateway(gwproc.GatewayConfig{Bin: o.bin, Addr: addr, DB: db, Storage: storage, Secret: secret,
			UpstreamURL: upstream, Workers: o.workers, LogPrefix: filepath.Join(dir, "gateway"), Extra: []string{"--upstream-rps", o.upstreamRPS}})
		if err != nil {
			return nil, err
		}
		return &target{url: g.URL, tenantKey: g.TenantKey, proc: g, stop: func() { g.Stop(15 * time.Second) }}, nil
	}
	// As internal/cli/serve.go does with MAGIC_HOUR_API_KEY and --base-url.
	up, err := magichour.NewClient(magichour.WithAPIKey("mhk_bench"), magichour.WithBaseURL(upstream))
	if err != nil {
		return nil, err
	}
	rps, err := strconv.ParseFloat(o.upstreamRPS, 64)
	if err != nil {
		return nil, fmt.Errorf("-upstream-rps: %w", err)
	}
	gw, err := gateway.Open(ctx, gateway.Options{DB: db, StorageURL: storage, Config: gateway.Config{
		Upstream: up, WebhookSecrets: []string{secret}, Workers: o.workers, Speed: 1, UpstreamRPS: rps}})
	if err != nil {
		return nil, err
	}
	tenant := gw.Keys().TenantKey
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &target{url: "http://" + addr, tenantKey: tenant, stop: func() {
		srv.Close()
		gw.Close()
	}}, nil
}

// submitAll posts n jobs of tool with c clients; it returns when all are
// accepted.
func submitAll(ctx context.Context, cl *gwproc.Client, tool string, n, c int, prefix string) error {
	params := catalog.Lookup(tool).ExampleBody()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				for attempt := 0; ; attempt++ {
					_, _, err := cl.Submit(ctx, tool, params, fmt.Sprintf("%s-%d", prefix, i))
					if err == nil {
						break
					}
					if attempt == 5 {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// throughput measures jobs/s from the first POST to the last `stored`.
func throughput(ctx context.Context, o options, db string) error {
	dir, err := os.MkdirTemp(o.work, "tp-"+db+"-")
	if err != nil {
		return err
	}
	url, cleanup, err := dbURL(ctx, db, dir)
	if err != nil {
		return err
	}
	defer cleanup()
	emuAddr, _ := gwproc.FreeAddr()
	gwAddr, _ := gwproc.FreeAddr()
	emu, err := gwproc.StartEmulator(o.bin, emuAddr, o.speed, "http://"+gwAddr+"/hooks/magichour", secret, filepath.Join(dir, "emulator"), "--credits", "1000000000000")
	if err != nil {
		return err
	}
	defer emu.Stop(5 * time.Second)
	tg, err := startGateway(ctx, o, gwAddr, url, dir, emu.URL)
	if err != nil {
		return err
	}
	defer tg.stop()
	dbr, err := gwproc.OpenDB(url)
	if err != nil {
		return err
	}
	defer dbr.Close()
	cl := gwproc.NewClient(tg.url, tg.tenantKey, o.clients)

	var gwCPU0, emuCPU0 time.Duration
	if tg.proc != nil {
		gwCPU0, _ = tg.proc.CPUTime()
	}
	emuCPU0, _ = emu.CPUTime()
	if o.cpuprofile != "" && o.inprocess {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	xid0 := writeXID(ctx, db, url)
	busy0, total0 := gwproc.SystemCPU()
	t0 := time.Now()
	subErr := make(chan error, 1)
	var submitted time.Duration
	go func() {
		err := submitAll(ctx, cl, o.throughputTool, o.jobs, o.clients, "tp")
		submitted = time.Since(t0)
		subErr <- err
	}()
	deadline := t0.Add(10 * time.Minute)
	var counts map[string]int
	for {
		time.Sleep(50 * time.Millisecond)
		if counts, err = dbr.StatusCounts(ctx); err != nil {
			return err
		}
		done := 0
		for s, n := range counts {
			if gwproc.Terminal(s) {
				done += n
			}
		}
		if done >= o.jobs {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not finished after 10 min: %v", counts)
		}
	}
	wall := time.Since(t0)
	busy1, total1 := gwproc.SystemCPU()
	xid1 := writeXID(ctx, db, url)
	if err := <-subErr; err != nil {
		return err
	}
	lat, err := dbr.Durations(ctx, "stored")
	if err != nil {
		return err
	}
	gwCPU, peak := "in-proc", "-"
	if tg.proc != nil {
		c, _ := tg.proc.CPUTime()
		gwCPU = fmt.Sprintf("%.1fs", (c - gwCPU0).Seconds())
		_, p, _ := tg.proc.Memory()
		peak = mib(p)
	}
	ec, _ := emu.CPUTime()
	polled, _ := dbr.Polled(ctx)
	fmt.Printf("%-9s %8d %10.0f %9.2f %9.1f %9s %9s %8s %7.1fs %9s %7d\n", db, o.jobs, float64(o.jobs)/submitted.Seconds(), wall.Seconds(),
		float64(counts["stored"])/wall.Seconds(), ms(pct(lat, .5)), ms(pct(lat, .99)), gwCPU, (ec - emuCPU0).Seconds(), peak, polled)
	if xid0 > 0 && xid1 > xid0 {
		// Each committed write transaction took one transaction id; the
		// probe itself takes one more per reading.
		fmt.Printf("          database write transactions: %.2f per job (PostgreSQL transaction ids; the whole server counts, so run it on a server of its own)\n",
			float64(xid1-xid0-1)/float64(o.jobs))
	}
	if counts["stored"] != o.jobs {
		fmt.Printf("          not all stored: %v\n", counts)
	}
	fmt.Printf("          machine CPU busy during the run: %.0f%% of %d CPUs (everything: gateway, emulator, this program, PostgreSQL, other users)\n",
		100*float64(busy1-busy0)/float64(max(total1-total0, 1)), runtime.NumCPU())
	return nil
}

// memory keeps o.inflight jobs in flight and reads the gateway's RSS, then
// runs the webhook ingest part against the same gateway.
func memory(ctx context.Context, o options, db string) error {
	dir, err := os.MkdirTemp(o.work, "mem-"+db+"-")
	if err != nil {
		return err
	}
	url, cleanup, err := dbURL(ctx, db, dir)
	if err != nil {
		return err
	}
	defer cleanup()
	emuAddr, _ := gwproc.FreeAddr()
	gwAddr, _ := gwproc.FreeAddr()
	emu, err := gwproc.StartEmulator(o.bin, emuAddr, 1, "http://"+gwAddr+"/hooks/magichour", secret, filepath.Join(dir, "emulator"), "--credits", "1000000000000")
	if err != nil {
		return err
	}
	defer emu.Stop(5 * time.Second)
	tg, err := startGateway(ctx, o, gwAddr, url, dir, emu.URL)
	if err != nil {
		return err
	}
	defer tg.stop()
	if tg.proc == nil {
		return fmt.Errorf("memory needs the gateway as a process (drop -inprocess)")
	}
	dbr, err := gwproc.OpenDB(url)
	if err != nil {
		return err
	}
	defer dbr.Close()
	cl := gwproc.NewClient(tg.url, tg.tenantKey, o.clients)
	rss0, _, _ := tg.proc.Memory()

	fmt.Printf("\n== memory: %d %s jobs in flight (emulator speed 1), %s, --workers %d ==\n", o.inflight, o.flightTool, db, o.workers)
	t0 := time.Now()
	if err := submitAll(ctx, cl, o.flightTool, o.inflight, o.clients, "mem"); err != nil {
		return err
	}
	accepted := time.Since(t0)
	var counts map[string]int
	for {
		if counts, err = dbr.StatusCounts(ctx); err != nil {
			return err
		}
		if counts["pending"]+counts["creating"] == 0 || time.Since(t0) > 10*time.Minute {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	allCreated := time.Since(t0)
	time.Sleep(2 * time.Second)
	rss, peak, _ := tg.proc.Memory()
	fmt.Printf("accepted %d jobs in %.1fs (%.0f/s); all created upstream after %.1fs (%.0f creates/s); statuses %v\n",
		o.inflight, accepted.Seconds(), float64(o.inflight)/accepted.Seconds(), allCreated.Seconds(), float64(o.inflight)/allCreated.Seconds(), counts)
	fmt.Printf("gateway RSS: idle %s; with %d in flight %s; peak (VmHWM) %s\n", mib(rss0), o.inflight, mib(rss), mib(peak))

	return webhooks(ctx, o, tg, dbr)
}

// webhooks posts signed events for in-flight jobs at a paced rate.
func webhooks(ctx context.Context, o options, tg *target, dbr *gwproc.DB) error {
	ids, kinds, err := dbr.Upstream(ctx)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("no in-flight jobs")
	}
	n := int(float64(o.hookRate) * o.hookDuration.Seconds())
	fmt.Printf("\n== webhook ingest: %d signed events at %d/s to /hooks/magichour (%d jobs in flight) ==\n", n, o.hookRate, len(ids))
	type req struct {
		body []byte
		hdr  http.Header
	}
	now := time.Now()
	reqs := make([]req, n)
	for i := range reqs {
		id, kind := ids[i%len(ids)], kinds[i%len(ids)]
		typ, _ := webhook.EventFor(webhook.Kind(kind), "rendering")
		body, _ := json.Marshal(map[string]any{"type": typ, "payload": map[string]any{
			"id": id, "name": fmt.Sprintf("bench event %d", i), "status": "rendering", "type": "VIDEO_TO_VIDEO",
			"created_at": now.Format(time.RFC3339), "enabled": true, "credits_charged": 450, "downloads": []any{}, "error": nil}})
		reqs[i] = req{body, webhook.Headers(secret, now, body)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	sched := make([]time.Duration, n) // from the scheduled time
	serv := make([]time.Duration, n)  // from the actual send
	var bad atomic.Int64
	var badMu sync.Mutex
	badCodes := map[int]int{}
	work := make(chan int, n)
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	interval := time.Second / time.Duration(o.hookRate)
	for range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				due := start.Add(time.Duration(i) * interval)
				sent := time.Now()
				hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.url+"/hooks/magichour", strings.NewReader(string(reqs[i].body)))
				for k, v := range reqs[i].hdr {
					hr.Header[k] = v
				}
				hr.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(hr)
				end := time.Now()
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				if code != http.StatusNoContent && code != http.StatusOK {
					bad.Add(1)
					badMu.Lock()
					badCodes[code]++
					badMu.Unlock()
				}
				sched[i], serv[i] = end.Sub(due), end.Sub(sent)
			}
		}()
	}
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("sent %d in %.2fs (%.0f/s achieved); failed %d %v\n", n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), bad.Load(), badCodes)
	fmt.Printf("latency from scheduled time: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms\n", ms(pct(sched, .5)), ms(pct(sched, .9)), ms(pct(sched, .99)), ms(pct(sched, 1)))
	fmt.Printf("latency from send:           p50 %s ms, p90 %s ms, p99 %s ms, max %s ms\n", ms(pct(serv, .5)), ms(pct(serv, .9)), ms(pct(serv, .99)), ms(pct(serv, 1)))
	if tg.proc != nil {
		rss, peak, _ := tg.proc.Memory()
		fmt.Printf("gateway RSS after: %s; peak (VmHWM) %s\n", mib(rss), mib(peak))
	}
	return nil
}

// writeXID returns PostgreSQL's next transaction id (0 for SQLite or on
// error): only transactions that write take one, so the difference over a
// run counts the write transactions.
func writeXID(ctx context.Context, db, url string) int64 {
	if db != "postgres" {
		return 0
	}
	conn, err := sql.Open("pgx", url)
	if err != nil {
		return 0
	}
	defer conn.Close()
	var x int64
	if err := conn.QueryRowContext(ctx, "SELECT txid_current()").Scan(&x); err != nil {
		return 0
	}
	return x
}
