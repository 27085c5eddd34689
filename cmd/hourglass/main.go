// Command hourglass is the Hourglass toolkit for Magic Hour's AI media API.
package main

import (
	"os"

	"github.com/hourglasshq/hourglass/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
