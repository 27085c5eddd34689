// Package gwproc runs `hourglass serve` and `hourglass emulate` as child
// processes for the gateway's crash test and benchmarks: build the binary,
// start, kill -9, restart on the same database and storage, read RSS, and
// talk to the native API.
package gwproc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// DefaultPostgres is the DSN used when HOURGLASS_TEST_POSTGRES is unset (the
// same default as the gateway's own tests).
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Build compiles ./cmd/hourglass into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "hourglass")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/hourglasshq/hourglass/cmd/hourglass")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/hourglass: %v\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a 127.0.0.1 address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Proc is a child process whose stdout and stderr go to log files.
type Proc struct {
	Cmd    *exec.Cmd
	Stdout string // path of the stdout log
	done   chan struct{}
	err    error
}

// Start runs bin with args and extra environment; output goes to
// logPrefix.out / .err (appended, so restarts share the files).
func Start(bin string, args, env []string, logPrefix string) (*Proc, error) {
	out, err := os.OpenFile(logPrefix+".out", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	errf, err := os.OpenFile(logPrefix+".err", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		out.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the harness
	if err := cmd.Start(); err != nil {
		out.Close()
		errf.Close()
		return nil, err
	}
	p := &Proc{Cmd: cmd, Stdout: logPrefix + ".out", done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		errf.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to grace, then kills.
func (p *Proc) Stop(grace time.Duration) {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Memory returns the process's current and peak resident set size in
// bytes (VmRSS and VmHWM from /proc/<pid>/status).
func (p *Proc) Memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n << 10
		case "VmHWM:":
			peak = n << 10
		}
	}
	return rss, peak, nil
}

// CPUTime returns the user+system CPU time the process has used so far.
func (p *Proc) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, errors.New("short /proc/stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil // USER_HZ = 100
}

// waitHTTP polls url until it answers 200, the process exits, or timeout.
func waitHTTP(p *Proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("process exited before %s answered: %v (see %s and .err)", url, p.err, p.Stdout)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last error %v)", url, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Emulator is a `hourglass emulate` process.
type Emulator struct {
	*Proc
	URL string
}

// StartEmulator runs `hourglass emulate` on addr at speed, delivering
// signed webhooks to hookURL; extra are more emulate flags.
func StartEmulator(bin, addr string, speed float64, hookURL, secret, logPrefix string, extra ...string) (*Emulator, error) {
	args := append([]string{"emulate", "--addr", addr, "--speed", strconv.FormatFloat(speed, 'g', -1, 64),
		"--webhook-url", hookURL, "--webhook-secret", secret}, extra...)
	p, err := Start(bin, args, nil, logPrefix)
	if err != nil {
		return nil, err
	}
	e := &Emulator{Proc: p, URL: "http://" + addr}
	if err := waitHTTP(p, e.URL+"/_emulator/stats", 30*time.Second); err != nil {
		p.Kill()
		return nil, err
	}
	return e, nil
}

// EmulatorStats is the part of /_emulator/stats the harness reads.
type EmulatorStats struct {
	Creates           int            `json:"creates"`
	CreatesByTool     map[string]int `json:"creates_by_tool"`
	Requests          map[string]int `json:"requests"`
	WebhooksSent      int            `json:"webhooks_sent"`
	WebhooksFailed    int            `json:"webhooks_failed"`
	WebhooksAbandoned int            `json:"webhooks_abandoned"`
	Downloads         int            `json:"downloads"`
}

// Stats reads the emulator's admin stats.
func (e *Emulator) Stats(ctx context.Context) (*EmulatorStats, error) {
	var s EmulatorStats
	if err := getJSON(ctx, http.DefaultClient, e.URL+"/_emulator/stats", "", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// GatewayConfig says how to run `hourglass serve` against an external
// upstream (the emulator process).
type GatewayConfig struct {
	Bin, Addr, DB, Storage, Secret, UpstreamURL string
	Workers                                     int
	LogPrefix                                   string
	Extra                                       []string // more serve flags
	// ReadyPath is what a start waits for (default /readyz; /healthz when
	// the gateway is expected not to be ready, e.g. on a full disk).
	ReadyPath string
}

// Gateway is a `hourglass serve` process (restartable on the same
// database and storage).
type Gateway struct {
	*Proc
	Cfg       GatewayConfig
	URL       string
	AdminKey  string
	TenantKey string
	Starts    int
}

// StartGateway runs serve and waits for /readyz; on the first start it
// reads the admin and tenant keys from the banner.
func StartGateway(cfg GatewayConfig) (*Gateway, error) {
	g := &Gateway{Cfg: cfg, URL: "http://" + cfg.Addr}
	if err := g.Restart(); err != nil {
		return nil, err
	}
	return g, nil
}

// Restart starts the process again (after Kill or Stop).
func (g *Gateway) Restart() error {
	c := g.Cfg
	args := append([]string{"serve", "--addr", c.Addr, "--db", c.DB, "--storage", c.Storage,
		"--webhook-secret", c.Secret, "--base-url", c.UpstreamURL, "--workers", strconv.Itoa(c.Workers)}, c.Extra...)
	var before int64
	if fi, err := os.Stat(c.LogPrefix + ".out"); err == nil {
		before = fi.Size()
	}
	p, err := Start(c.Bin, args, []string{"MAGIC_HOUR_API_KEY=mhk_bench"}, c.LogPrefix)
	if err != nil {
		return err
	}
	g.Proc = p
	g.Starts++
	ready := c.ReadyPath
	if ready == "" {
		ready = "/readyz"
	}
	if err := waitHTTP(p, g.URL+ready, 60*time.Second); err != nil {
		p.Kill()
		return err
	}
	if g.TenantKey == "" {
		// The banner is printed before the listener serves, so it is in
		// the log once /readyz answers.
		b, _ := os.ReadFile(c.LogPrefix + ".out")
		if int64(len(b)) >= before {
			b = b[before:]
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "admin key:"); ok {
				g.AdminKey = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "tenant key:"); ok {
				g.TenantKey = strings.TrimSpace(v)
			}
		}
		if g.TenantKey == "" {
			p.Kill()
			return fmt.Errorf("no tenant key in the first start's banner (%s); is the database fresh?", c.LogPrefix+".out")
		}
	}
	return nil
}

// Postgres returns a DSN to a fresh schema (search_path) on the server at
// HOURGLASS_TEST_POSTGRES (else DefaultPostgres) and a func that drops it;
// an error means the server is not reachable.
func Postgres(ctx context.Context, prefix string) (dsn string, drop func(), err error) {
	base := os.Getenv("HOURGLASS_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgres
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := db.PingContext(cctx); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL not reachable at %s: %w", base, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(cctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop = func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, drop, nil
}

// Client talks to the gateway's native API with a tenant key.
type Client struct {
	Base, Key string
	HTTP      *http.Client
}

// NewClient returns a client with its own connection pool.
func NewClient(base, key string, conns int) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns*2, conns*2
	return &Client{Base: base, Key: key, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Job is the part of the native API's job the harness reads.
type Job struct {
	ID             string `json:"id"`
	Tool           string `json:"tool"`
	Kind           string `json:"kind"`
	Status         string `json:"status"`
	UpstreamID     string `json:"upstream_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Attempts       int    `json:"attempts"`
	Polls          int    `json:"polls"`
	Error          *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Outputs []struct {
		Index  int    `json:"index"`
		Stored bool   `json:"stored"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"outputs"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Terminal reports whether status is final.
func Terminal(status string) bool {
	switch status {
	case "stored", "error", "canceled", "create_outcome_unknown":
		return true
	}
	return false
}

// Submit posts one job; it returns the job, the HTTP status, and an error
// for transport failures or statuses other than 200/202.
func (c *Client) Submit(ctx context.Context, tool string, params map[string]any, idem string) (*Job, int, error) {
	body, _ := json.Marshal(map[string]any{"tool": tool, "params": params, "idempotency_key": idem})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/api/jobs", bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("POST /api/jobs: %d %s", resp.StatusCode, raw)
	}
	var j Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("POST /api/jobs: %w", err)
	}
	return &j, resp.StatusCode, nil
}

// Job reads one job.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := getJSON(ctx, c.HTTP, c.Base+"/api/jobs/"+id, c.Key, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// List reads every job (all pages), optionally filtered by status.
func (c *Client) List(ctx context.Context, status string) ([]Job, error) {
	var all []Job
	cursor := ""
	for {
		q := url.Values{"limit": {"200"}}
		if status != "" {
			q.Set("status", status)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Jobs       []Job  `json:"jobs"`
			NextCursor string `json:"next_cursor"`
		}
		if err := getJSON(ctx, c.HTTP, c.Base+"/api/jobs?"+q.Encode(), c.Key, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Jobs...)
		if page.NextCursor == "" || len(page.Jobs) == 0 {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// Output fetches a stored output through the gateway.
func (c *Client) Output(ctx context.Context, id string, n int) ([]byte, error) {
	return getBytes(ctx, c.HTTP, fmt.Sprintf("%s/api/jobs/%s/outputs/%d", c.Base, id, n), c.Key)
}

// UpstreamDownloads reads a project from the upstream (the emulator) and
// returns its download URLs.
func UpstreamDownloads(ctx context.Context, upstream, kind, id string) ([]string, error) {
	var p struct {
		Downloads []struct {
			URL string `json:"url"`
		} `json:"downloads"`
	}
	if err := getJSON(ctx, http.DefaultClient, fmt.Sprintf("%s/v1/%s-projects/%s", upstream, kind, id), "mhk_bench", &p); err != nil {
		return nil, err
	}
	urls := make([]string, len(p.Downloads))
	for i, d := range p.Downloads {
		urls[i] = d.URL
	}
	return urls, nil
}

// Fetch GETs url and returns the body.
func Fetch(ctx context.Context, url string) ([]byte, error) {
	return getBytes(ctx, http.DefaultClient, url, "")
}

func getBytes(ctx context.Context, c *http.Client, url, key string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %.200s", url, resp.StatusCode, b)
	}
	return b, nil
}

func getJSON(ctx context.Context, c *http.Client, url, key string, out any) error {
	b, err := getBytes(ctx, c, url, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// DB is a read-only look at a gateway's database, for progress counting
// without loading the gateway's API.
type DB struct{ *sql.DB }

// OpenDB opens the gateway database at dbURL (sqlite://path or postgres://).
func OpenDB(dbURL string) (*DB, error) {
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
		return &DB{db}, err
	}
	db, err := sql.Open("pgx", dbURL)
	return &DB{db}, err
}

// StatusCounts returns the number of jobs per status.
func (d *DB) StatusCounts(ctx context.Context) (map[string]int, error) {
	rows, err := d.QueryContext(ctx, "SELECT status, count(*) FROM jobs GROUP BY status")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// Durations returns finished_at - created_at of every job in status.
func (d *DB) Durations(ctx context.Context, status string) ([]time.Duration, error) {
	rows, err := d.QueryContext(ctx, "SELECT finished_at - created_at FROM jobs WHERE status = '"+status+"' AND finished_at IS NOT NULL")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return nil, err
		}
		out = append(out, time.Duration(ms)*time.Millisecond)
	}
	return out, rows.Err()
}

// Upstream returns (upstream id, kind) of every job that has one.
func (d *DB) Upstream(ctx context.Context) (ids, kinds []string, err error) {
	rows, err := d.QueryContext(ctx, "SELECT upstream_id, kind FROM jobs WHERE upstream_id IS NOT NULL")
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, kind string
		if err := rows.Scan(&id, &kind); err != nil {
			return nil, nil, err
		}
		ids, kinds = append(ids, id), append(kinds, kind)
	}
	return ids, kinds, rows.Err()
}

// Polled returns how many jobs needed at least one fallback poll (their
// webhooks were missed or arrived before the create's answer was recorded).
func (d *DB) Polled(ctx context.Context) (int, error) {
	var n int
	err := d.QueryRowContext(ctx, "SELECT count(*) FROM jobs WHERE polls > 0").Scan(&n)
	return n, err
}

// OpenJob is a non-terminal job: its status and whether a worker held its
// lease at the time of the query.
type OpenJob struct {
	ID, Status string
	Leased     bool
}

// Open returns every non-terminal job.
func (d *DB) Open(ctx context.Context) ([]OpenJob, error) {
	rows, err := d.QueryContext(ctx, "SELECT id, status, COALESCE(lease_until, 0) FROM jobs WHERE status NOT IN ('stored', 'error', 'canceled', 'create_outcome_unknown')")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := time.Now().UnixMilli()
	var out []OpenJob
	for rows.Next() {
		var j OpenJob
		var until int64
		if err := rows.Scan(&j.ID, &j.Status, &until); err != nil {
			return nil, err
		}
		j.Leased = until > now
		out = append(out, j)
	}
	return out, rows.Err()
}

// SystemCPU returns the machine's busy and total CPU time so far (all
// CPUs, from /proc/stat); the difference of two readings says how loaded
// the machine was in between.
func SystemCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		d := time.Duration(n) * 10 * time.Millisecond
		total += d
		if i != 3 && i != 4 { // idle, iowait
			busy += d
		}
	}
	return busy, total
}

// Feed sends 0..n-1 on next, the i-th no earlier than i×interval after the
// start (0: as fast as they are taken), then closes next; it stops early
// when ctx ends. The returned channel is closed when it has returned.
func Feed(ctx context.Context, n int, interval time.Duration, next chan<- int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(next)
		t0 := time.Now()
		for i := range n {
			if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return done
}
