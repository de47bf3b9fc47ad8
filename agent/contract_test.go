package agent

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
)

// TestRoutesAreTheContract: the agent serves exactly agentapi.Routes, each
// with its own handler.
func TestRoutesAreTheContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if got := len(e.a.handlers()); got != len(agentapi.Routes) {
		t.Fatalf("%d handlers for %d routes of agentapi.Routes", got, len(agentapi.Routes))
	}
	for _, route := range agentapi.Routes {
		method, path, _ := strings.Cut(route, " ")
		req := httptest.NewRequest(method, strings.ReplaceAll(path, "{vendor}", "planet"), nil)
		if _, pattern := e.a.mux.Handler(req); pattern != route {
			t.Errorf("%s is served as %q", route, pattern)
		}
	}
}

// TestCodesAreTheContract reads the agent's source: every code it sends is
// an agentapi.Code constant listed in agentapi.Codes (no string literal
// where a code goes), and every listed code is sent somewhere.
func TestCodesAreTheContract(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := codeConsts(t)
	used := map[agentapi.Code]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var code ast.Expr
			switch n := n.(type) {
			case *ast.FuncDecl:
				return n.Name.Name != "fail" // which passes its argument on
			case *ast.CallExpr: // fail(status, code, message)
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "fail" && len(n.Args) == 3 {
					code = n.Args[1]
				}
			case *ast.KeyValueExpr: // agentapi.Error{Code: …}
				if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Code" {
					code = n.Value
				}
			case *ast.SelectorExpr: // any other use of a constant
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "agentapi" && strings.HasPrefix(n.Sel.Name, "Code") && n.Sel.Name != "Code" {
					c := consts[n.Sel.Name]
					if !slices.Contains(agentapi.Codes, c) {
						t.Errorf("%s: agentapi.%s is not in agentapi.Codes", fset.Position(n.Pos()), n.Sel.Name)
					}
					used[c] = true
				}
				return true
			}
			if code == nil {
				return true
			}
			if sel, ok := code.(*ast.SelectorExpr); !ok || !isIdent(sel.X, "agentapi") {
				t.Errorf("%s: a code that is not an agentapi.Code constant", fset.Position(code.Pos()))
			}
			return true
		})
	}
	for _, c := range agentapi.Codes {
		if !used[c] {
			t.Errorf("agentapi.Codes lists %s, which the agent never sends", c)
		}
	}
}

// codeConsts maps the name of every agentapi.Code constant to its value.
func codeConsts(t *testing.T) map[string]agentapi.Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../agentapi/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]agentapi.Code{}
	ast.Inspect(f, func(n ast.Node) bool {
		if v, ok := n.(*ast.ValueSpec); ok && len(v.Values) == len(v.Names) {
			for i, name := range v.Names {
				if lit, ok := v.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out[name.Name] = agentapi.Code(s)
				}
			}
		}
		return true
	})
	if len(out) < len(agentapi.Codes) {
		t.Fatalf("found %d Code constants in agentapi/errors.go", len(out))
	}
	return out
}

func isIdent(x ast.Expr, name string) bool {
	id, ok := x.(*ast.Ident)
	return ok && id.Name == name
}
