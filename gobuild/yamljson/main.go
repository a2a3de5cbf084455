// Command yamljson reads YAML the way kubectl, kubeconform and Argo CD do, and prints what they see.
//
// Each argument (or standard input when there is none) is a stream of YAML documents. The stream is
// split on lines that are exactly "---" (trailing blanks allowed), as Kubernetes' own YAML reader
// splits it, and each document goes through sigs.k8s.io/yaml's YAMLToJSON, the conversion those
// programs apply (a YAML 1.1 reader: y/n/yes/no/on/off are booleans, 0x1F and 0o17 are integers).
// One line of JSON is printed per non-empty document; the line is "null" only for a document that
// holds an explicit null. `yamljson --version` prints the sigs.k8s.io/yaml version it was built with.
//
// The render's oracle test (tests/pipeline/test_render_meaning.py) compares this reading of
// kustomize's raw output with this reading of rendered/. Bump the version here and in tools.toml
// ([cluster.yamljson]) together.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"sigs.k8s.io/yaml"
)

const module = "sigs.k8s.io/yaml"

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == module {
			return dep.Version
		}
	}
	return "unknown"
}

// documents splits a stream the way k8s.io/apimachinery's YAMLReader does: a line that starts
// with "---" and has nothing but white space after it ends a document.
func documents(stream []byte) [][]byte {
	var docs [][]byte
	var current bytes.Buffer
	reader := bufio.NewReader(bytes.NewReader(stream))
	for {
		line, err := reader.ReadBytes('\n')
		if bytes.HasPrefix(line, []byte("---")) && strings.TrimSpace(string(line[3:])) == "" {
			docs = append(docs, append([]byte(nil), current.Bytes()...))
			current.Reset()
		} else {
			current.Write(line)
		}
		if err != nil {
			break
		}
	}
	return append(docs, current.Bytes())
}

// blank reports whether a document holds only comments and white space.
func blank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		text := strings.TrimSpace(line)
		if text != "" && !strings.HasPrefix(text, "#") {
			return false
		}
	}
	return true
}

func convert(name string, stream []byte, out io.Writer) error {
	for index, doc := range documents(stream) {
		if blank(doc) {
			continue
		}
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return fmt.Errorf("%s: document %d: %v", name, index+1, err)
		}
		if _, err := fmt.Fprintf(out, "%s\n", data); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Printf("%s %s\n", module, version())
		return
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	inputs := args
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, name := range inputs {
		var stream []byte
		var err error
		if name == "-" {
			stream, err = io.ReadAll(os.Stdin)
		} else {
			stream, err = os.ReadFile(name)
		}
		if err == nil {
			err = convert(name, stream, out)
		}
		if err != nil {
			out.Flush()
			fmt.Fprintf(os.Stderr, "yamljson: %v\n", err)
			os.Exit(1)
		}
	}
}
