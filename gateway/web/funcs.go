package web

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"short":    short,
	"bytes":    fmtBytes,
	"duration": fmtDuration,
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("Jan 2 15:04:05")
	},
	"clockms": func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"label":   statusLabel,
	"tone":    statusTone,
	"title":   titleCase,
	"add":     func(a, b int) int { return a + b },
	"addf":    func(a, b float64) float64 { return a + b },
	"scale":   func(p, k float64) float64 { return p * k },
	"add170":  func(x float64) float64 { return x + 170 },
	"sub110":  func(h float64) float64 { return 110 - h },
	"half":    func(x float64) float64 { return x / 2 },
	"colw": func(cols []column) float64 {
		if len(cols) == 0 {
			return 0
		}
		return 600/float64(len(cols)) - 3
	},
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
}

func urlEscape(s string) string { return url.QueryEscape(s) }

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

func statusLabel(s string) string {
	if s == "create_outcome_unknown" {
		return "outcome unknown"
	}
	return s
}

// statusTone groups statuses for colour: running, done, bad, wait.
func statusTone(s string) string {
	switch s {
	case "stored":
		return "done"
	case "error", "create_outcome_unknown":
		return "bad"
	case "canceled", "deleted":
		return "muted"
	case "pending", "creating":
		return "wait"
	}
	return "run"
}

func titleCase(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "_", " "), "-", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
