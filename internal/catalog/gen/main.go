// Command gen distills the Magic Hour OpenAPI spec and the processing-times
// table into catalog.json, the catalog's embedded default (see the package
// doc of internal/catalog). It is run by go generate.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

func main() {
	spec := flag.String("spec", "", "path to the OpenAPI spec (JSON)")
	times := flag.String("times", "", "path to processing-times.tsv")
	date := flag.String("date", "", "date of the spec snapshot, YYYY-MM-DD")
	out := flag.String("out", "catalog.json", "output file")
	flag.Parse()
	b, err := Generate(*spec, *times, *date)
	if err != nil {
		slog.Error("generate catalog", "err", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		slog.Error("write catalog", "err", err)
		os.Exit(1)
	}
}

// Generate returns the content of catalog.json.
func Generate(specPath, timesPath, date string) ([]byte, error) {
	spec, err := os.ReadFile(specPath)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	tb, err := os.ReadFile(timesPath)
	if err != nil {
		return nil, fmt.Errorf("read processing times: %w", err)
	}
	times, err := catalog.ParseTimes(tb)
	if err != nil {
		return nil, err
	}
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return nil, fmt.Errorf("-date: %w", err)
	}
	c, err := catalog.Load(spec, catalog.WithTimes(times), catalog.WithDate(d), catalog.WithSource(filepath.Base(specPath)))
	if err != nil {
		return nil, err
	}
	return c.Encode()
}
