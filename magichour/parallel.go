package magichour

import (
	"context"
	"sync"
)

// forEach runs fn(ctx, i) for i in [0, n) with at most limit running at
// once and returns each call's error by index. A call that never started
// because ctx ended gets ctx's error. It returns when every started call
// has returned, so no goroutine outlives it.
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			errs[i] = fn(ctx, i)
		}()
	}
	wg.Wait()
	return errs
}
