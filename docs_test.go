package hashwall

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fileRef is a name of a file of the repository as comments and documents
// cite them: docs/protocol.md, agent-api.md, report.go, xcaddy.sh.
var fileRef = regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.(?:md|go|sh|lua)\b`)

// TestCitedFilesExist checks that no comment or document names a file the
// repository does not have: a name resolves from the citing file's folder,
// from the root, or as a file of that name anywhere in the tree (a comment
// naming a file of its own package).
func TestCitedFilesExist(t *testing.T) {
	names := map[string]bool{}
	var texts []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "node_modules" || n == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		names[d.Name()] = true
		if strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".md") || strings.HasSuffix(p, ".sh") {
			texts = append(texts, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range texts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(p, ".go") && !strings.Contains(line, "//") {
				continue // code, not a comment
			}
			for _, loc := range fileRef.FindAllStringIndex(line, -1) {
				ref := line[loc[0]:loc[1]]
				if loc[0] > 0 && (strings.HasSuffix(line[:loc[0]], "://") || strings.Contains(line[:loc[0]], "http")) {
					continue // a URL
				}
				if exists(ref) || exists(filepath.Join(filepath.Dir(p), ref)) || names[filepath.Base(ref)] && !strings.Contains(ref, "/") {
					continue
				}
				t.Errorf("%s:%d cites %s, which the repository does not have", p, i+1, ref)
			}
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
