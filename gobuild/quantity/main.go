// Command quantity prints the canonical form of Kubernetes resource quantities, as the API server
// stores them: each line of standard input is parsed with resource.ParseQuantity from
// k8s.io/apimachinery, and one line is printed for it, "ok\t<q.String()>" or "error\t<message>".
// `quantity --version` prints the apimachinery version it was built with (from the Go build info).
//
// The diff's Python decision "these two quantities are stored identically" is tested against
// this program (tests/pipeline/test_diff_quantity.py).
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
)

const module = "k8s.io/apimachinery"

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == module {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "unknown"
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Printf("quantity %s %s\n", module, version())
		return
	}
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: quantity [--version] < quantities (one per line)")
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		q, err := resource.ParseQuantity(in.Text())
		if err != nil {
			fmt.Fprintf(out, "error\t%v\n", err)
			continue
		}
		fmt.Fprintf(out, "ok\t%s\n", q.String())
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "quantity: reading standard input:", err)
		os.Exit(3)
	}
}
