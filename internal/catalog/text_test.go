package catalog_test

import (
	"testing"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

func TestSummarySkipsHashHeadings(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"## What this API does\n\nCreate a video.",
		"**What this API does**\nCreate a video.",
		"### What this API does\nCreate a video.\n\n* a",
	} {
		if got := catalog.Summary(in); got != "Create a video." {
			t.Errorf("Summary(%q) = %q", in, got)
		}
	}
}
