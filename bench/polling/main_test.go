package main

import "testing"

// TestSmoke runs every strategy on three short image jobs at high speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark smoke test")
	}
	if err := run(3, 500, 1, "", true); err != nil {
		t.Fatal(err)
	}
}
