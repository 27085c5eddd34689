// Command attacks re-runs issue 11's resource-abuse and SSRF attacks
// against a running `hourglass serve` on loopback and prints what it
// measured:
//
//	attacks -url http://127.0.0.1:8080 -key hgt_... -pid PID nested
//	attacks -url http://127.0.0.1:8080 -conns 2000 -every 5s slowbody
//	attacks -url http://127.0.0.1:8080 -key hgt_... ssrf
//
// nested submits deeply nested params and metadata (the deep ones must be
// refused; the deepest accepted are read back through the API and the
// dashboard-sized list) and reports response sizes and the server's RSS
// (from /proc/PID/status). slowbody opens -conns connections that send a
// webhook's headers and then one body byte every -every, reports how soon
// each was closed by the server, and probes /healthz once a second
// throughout. ssrf submits each IPv6 form that embeds an internal IPv4 as
// a callback_url (literal addresses: nothing is resolved or dialed).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "gateway base URL (loopback)")
	key := flag.String("key", "", "tenant key")
	pid := flag.Int("pid", 0, "server process id, for RSS")
	conns := flag.Int("conns", 2000, "slowbody: connections")
	every := flag.Duration("every", 5*time.Second, "slowbody: one body byte per connection this often")
	flag.Parse()
	u, err := url.Parse(*base)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1" && u.Hostname() != "localhost") {
		fmt.Fprintln(os.Stderr, "attacks: -url must be on loopback")
		os.Exit(2)
	}
	switch flag.Arg(0) {
	case "nested":
		nested(*base, *key, *pid)
	case "slowbody":
		slowbody(u.Host, *base, *conns, *every)
	case "ssrf":
		ssrf(*base, *key)
	default:
		fmt.Fprintln(os.Stderr, "attacks: nested | slowbody | ssrf")
		os.Exit(2)
	}
}

func call(method, url, key string, body []byte) (int, []byte) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func rss(pid int) string {
	if pid == 0 {
		return "?"
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var cur, peak string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			cur = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			peak = strings.TrimSpace(v)
		}
	}
	return "RSS " + cur + " (peak " + peak + ")"
}

// deep is depth levels of [...] around n elements, about size bytes.
func deep(depth, size int) string {
	inner := strings.TrimSuffix(strings.Repeat("1,", max(1, (size-2*depth)/2)), ",")
	return strings.Repeat("[", depth) + inner + strings.Repeat("]", depth)
}

func nested(base, key string, pid int) {
	fmt.Println("before:", rss(pid))
	submit := func(meta, style string) (int, []byte) {
		body := `{"tool":"ai-image-generator","params":{"image_count":1,"aspect_ratio":"1:1","style":{"prompt":"x","x":` + style +
			`}},"metadata":{"m":` + meta + `}}`
		return call("POST", base+"/api/jobs", key, []byte(body))
	}
	// The attack: 20 KB of nested params (about 3,400 levels).
	code, b := submit(`1`, strings.Repeat(`{"a":`, 3400)+"1"+strings.Repeat("}", 3400))
	fmt.Printf("20 KB nested params: %d %.160s\n", code, b)
	code, b = submit(strings.Repeat("[", 8000)+strings.Repeat("]", 8000), `1`)
	fmt.Printf("16 KB nested metadata: %d %.160s\n", code, b)
	// The same 20 KB nested as deep as accepted (30 levels, plus 15 KB of
	// metadata as deep), 50 jobs: a list page holds all of them.
	var id string
	for i := range 50 {
		code, b = submit(deep(29, 15<<10), deep(28, 20<<10))
		if code != http.StatusAccepted {
			fmt.Printf("accepted-size submission %d: %d %.200s\n", i, code, b)
			return
		}
		var j struct{ ID string }
		_ = json.Unmarshal(b, &j)
		id = j.ID
	}
	code, b = call("GET", base+"/api/jobs/"+id, key, nil)
	fmt.Printf("GET one job: %d, %d bytes\n", code, len(b))
	var wg sync.WaitGroup
	sizes := make([]int, 6)
	for i := range 6 {
		wg.Go(func() {
			_, b := call("GET", base+"/api/jobs?limit=50", key, nil)
			sizes[i] = len(b)
		})
	}
	wg.Wait()
	fmt.Printf("6 parallel lists of 50 such jobs: %v bytes each\n", sizes)
	fmt.Println("after:", rss(pid))
}

func slowbody(host, base string, n int, every time.Duration) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	var healthBad, healthOK int
	var healthMax time.Duration
	go func() {
		for ctx.Err() == nil {
			start := time.Now()
			c := http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get(base + "/healthz")
			d := time.Since(start)
			mu.Lock()
			if err != nil || resp.StatusCode != 200 {
				healthBad++
			} else {
				healthOK++
				healthMax = max(healthMax, d)
			}
			mu.Unlock()
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(time.Second)
		}
	}()
	start := time.Now()
	closed := make([]time.Duration, n)
	answers := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := net.Dial("tcp", host)
			if err != nil {
				mu.Lock()
				answers["dial error: "+err.Error()]++
				mu.Unlock()
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /hooks/magichour HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", host)
			done := make(chan struct{})
			go func() {
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Minute))
			line, _ := bufio.NewReader(c).ReadString('\n')
			_, _ = io.Copy(io.Discard, c)
			close(done)
			closed[i] = time.Since(start)
			mu.Lock()
			answers[strings.TrimSpace(line)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	stop()
	slices.Sort(closed)
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("%d slow-body connections (1 byte every %s): all closed after %s; median %s, p90 %s\n",
		n, every, closed[n-1].Round(time.Millisecond), closed[n/2].Round(time.Millisecond), closed[n*9/10].Round(time.Millisecond))
	fmt.Printf("answers: %v\n", answers)
	fmt.Printf("/healthz during the attack: %d ok (slowest %s), %d failed\n", healthOK, healthMax.Round(time.Millisecond), healthBad)
}

func ssrf(base, key string) {
	for _, host := range []string{"[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b:1::a00:1]", "[::ffff:0:7f00:1]",
		"[::ffff:127.0.0.1]", "[::7f00:1]", "[2002:7f00:1::]", "[2002:a9fe:a9fe::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
		"[fec0::1]", "240.0.0.1", "255.255.255.255"} {
		body := `{"tool":"ai-image-generator","params":{"image_count":1,"aspect_ratio":"1:1","style":{"prompt":"x"}},"callback_url":"http://` + host + `/hook"}`
		code, b := call("POST", base+"/api/jobs", key, []byte(body))
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		fmt.Printf("%-42s %d %s\n", host, code, e.Message)
	}
}
