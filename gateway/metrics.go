package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglasshq/hourglass/gateway/job"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the gateway's Prometheus metrics, on a registry of its own
// (no global state): GET /metrics.
type metrics struct {
	reg             *prometheus.Registry
	upstreamCalls   *prometheus.CounterVec
	upstreamSeconds *prometheus.HistogramVec
	webhookLag      prometheus.Histogram
	webhooks        *prometheus.CounterVec
	storedBytes     prometheus.Counter
	callbacks       *prometheus.CounterVec
	badRequests     *prometheus.CounterVec
}

func newMetrics(s Store) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.upstreamCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_upstream_calls_total", Help: "Calls to Magic Hour by route and HTTP status (error: no answer)."},
		[]string{"route", "status"})
	m.upstreamSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hourglass_upstream_call_seconds", Help: "Duration of calls to Magic Hour (after the rate limiter).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"route"})
	m.webhookLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hourglass_webhook_lag_seconds", Help: "Magic Hour webhook lag: event timestamp to receipt.",
		Buckets: []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 300}})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_webhooks_total", Help: "Magic Hour webhook deliveries by result."}, []string{"result"})
	m.storedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hourglass_stored_bytes_total", Help: "Bytes of outputs stored by this process."})
	m.callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_callback_attempts_total", Help: "Callback delivery attempts by result."}, []string{"result"})
	m.badRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_bad_requests_total", Help: "API requests refused (4xx) by code."}, []string{"code"})
	m.reg.MustRegister(m.upstreamCalls, m.upstreamSeconds, m.webhookLag, m.webhooks, m.storedBytes, m.callbacks, m.badRequests,
		&dbCollector{store: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// dbCollector reads gauges from the database at scrape time, so they are
// the same whichever replica is scraped: jobs by status and stored bytes.
type dbCollector struct{ store Store }

var (
	jobsDesc    = prometheus.NewDesc("hourglass_jobs", "Jobs by status (all replicas, from the database).", []string{"status"}, nil)
	storageDesc = prometheus.NewDesc("hourglass_storage_bytes", "Bytes of stored outputs (from the database).", nil, nil)
)

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc; ch <- storageDesc }

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := c.store.CountJobsByStatus(ctx); err == nil {
		for _, st := range job.Statuses() {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
	if n, err := c.store.StorageBytes(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(storageDesc, prometheus.GaugeValue, float64(n))
	}
}
