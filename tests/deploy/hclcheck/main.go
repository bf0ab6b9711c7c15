// hclcheck - the contract test of the cloud deploy modules (deploy/aws,
// deploy/gcp, deploy/azure).  Their providers cannot be downloaded
// where the tests run, so the modules cannot be planned; this parses
// each one with the HCL library and checks what the issue asks of it,
// evaluating the expressions that decide it (with the variables'
// defaults and both settings of the demo switch):
//
//   - every variable and output has a description; every variable is
//     used (referenced outside its own block); every reference to a
//     variable, local, resource or data source names a declared one
//   - external_services is a bool; with it true exactly three primaries
//     (one instance resource, count 3), with it false one (the demo)
//   - one secondary group whose size is var.secondary_count (set to 7
//     here), and none in the demo
//   - the load balancer probes /_health_check; port 80 redirects to
//     HTTPS; scale-in drains (per cloud: lifecycle hook, shutdown
//     script, termination notification)
//   - the primaries' and the group's user data reach, through locals,
//     file() or templatefile() of ../node/bootstrap.sh, the same file
//     deploy/local runs; the primaries' depends on count.index (each is
//     told its index), the group's does not (identical user data)
//   - join material is generated (random_*) and kept in the cloud's
//     secret store; the outputs application_url, health_check_url,
//     join_url and admin_token_command exist
//
// usage: hclcheck DEPLOY_DIR   (checks DEPLOY_DIR/{aws,gcp,azure})
// Exit 0 when every module passes, 1 with one line per failure.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// want is one nested attribute of a resource and the value it must
// evaluate to (a string, or a bool when Bool is set).
type want struct {
	Resource string // type.name
	Path     string // block.block.attribute
	Value    string
	Bool     bool // the value is a bool
	Contains bool // the value need only contain Value
}

// spec is what one cloud's module must contain.
type spec struct {
	Primary    string   // type.name of the primaries' instance resource
	Group      string   // type.name of the secondaries' group
	GroupSize  []string // attributes of Group that carry its size
	UserData   []want   // where user data is set: Resource, Path
	Health     want     // the load balancer's health check path
	Redirect   want     // the 80 -> 443 redirect
	Drain      want     // the scale-in drain hook
	SecretType string   // the cloud's secret store resource type
}

var specs = map[string]spec{
	"aws": {
		Primary:   "aws_instance.primary",
		Group:     "aws_autoscaling_group.secondary",
		GroupSize: []string{"desired_capacity", "min_size", "max_size"},
		UserData: []want{
			{Resource: "aws_instance.primary", Path: "user_data_base64"},
			{Resource: "aws_launch_template.secondary", Path: "user_data"},
		},
		Health: want{Resource: "aws_lb_target_group.app",
			Path: "health_check.path", Value: "/_health_check"},
		Redirect: want{Resource: "aws_lb_listener.http",
			Path: "default_action.redirect.protocol", Value: "HTTPS"},
		Drain: want{Resource: "aws_autoscaling_group.secondary",
			Path:  "initial_lifecycle_hook.lifecycle_transition",
			Value: "autoscaling:EC2_INSTANCE_TERMINATING"},
		SecretType: "aws_secretsmanager_secret",
	},
	"gcp": {
		Primary:   "google_compute_instance.primary",
		Group:     "google_compute_region_instance_group_manager.secondary",
		GroupSize: []string{"target_size"},
		UserData: []want{
			{Resource: "google_compute_instance.primary",
				Path: "metadata.startup-script"},
			{Resource: "google_compute_instance_template.secondary",
				Path: "metadata.startup-script"},
		},
		Health: want{Resource: "google_compute_health_check.app",
			Path: "https_health_check.request_path", Value: "/_health_check"},
		Redirect: want{Resource: "google_compute_url_map.redirect",
			Path: "default_url_redirect.https_redirect", Value: "true",
			Bool: true},
		Drain: want{Resource: "google_compute_instance_template.secondary",
			Path: "metadata.shutdown-script", Value: "bootstrap.sh drain",
			Contains: true},
		SecretType: "google_secret_manager_secret",
	},
	"azure": {
		Primary:   "azurerm_linux_virtual_machine.primary",
		Group:     "azurerm_linux_virtual_machine_scale_set.secondary",
		GroupSize: []string{"instances"},
		UserData: []want{
			{Resource: "azurerm_linux_virtual_machine.primary",
				Path: "custom_data"},
			{Resource: "azurerm_linux_virtual_machine_scale_set.secondary",
				Path: "custom_data"},
		},
		Health: want{Resource: "azurerm_application_gateway.app",
			Path: "probe.path", Value: "/_health_check"},
		Redirect: want{Resource: "azurerm_application_gateway.app",
			Path: "redirect_configuration.redirect_type", Value: "Permanent"},
		Drain: want{Resource: "azurerm_linux_virtual_machine_scale_set.secondary",
			Path: "termination_notification.enabled", Value: "true",
			Bool: true},
		SecretType: "azurerm_key_vault_secret",
	},
}

var outputsWanted = []string{"application_url", "health_check_url",
	"join_url", "admin_token_command"}

// module is one parsed module directory.
type module struct {
	dir       string
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block // type.name
	data      map[string]*hclsyntax.Block // type.name
	outputs   map[string]*hclsyntax.Block
	bodies    []*hclsyntax.Body
	fails     []string
}

func (m *module) fail(format string, args ...any) {
	m.fails = append(m.fails, fmt.Sprintf(format, args...))
}

func load(dir string) (*module, error) {
	m := &module{dir: dir,
		variables: map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
		resources: map[string]*hclsyntax.Block{},
		data:      map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s", diags.Error())
		}
		body := file.Body.(*hclsyntax.Body)
		m.bodies = append(m.bodies, body)
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "output":
				m.outputs[b.Labels[0]] = b
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "data":
				m.data[b.Labels[0]+"."+b.Labels[1]] = b
			case "locals":
				for n, a := range b.Body.Attributes {
					m.locals[n] = a
				}
			}
		}
	}
	return m, nil
}

// ---- evaluation ----

func functions(dir string) map[string]function.Function {
	fileFn := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := os.ReadFile(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(string(b)), nil
		},
	})
	return map[string]function.Function{
		"concat": stdlib.ConcatFunc, "element": stdlib.ElementFunc,
		"file": fileFn, "format": stdlib.FormatFunc,
		"join": stdlib.JoinFunc, "length": stdlib.LengthFunc,
		"lower": stdlib.LowerFunc, "max": stdlib.MaxFunc,
		"merge": stdlib.MergeFunc, "min": stdlib.MinFunc,
		"range": stdlib.RangeFunc, "replace": stdlib.ReplaceFunc,
		"tostring": stdlib.MakeToFunc(cty.String),
		"tonumber": stdlib.MakeToFunc(cty.Number),
		"upper":    stdlib.UpperFunc,
	}
}

// placeholder is a known value of type t for a required variable.
func placeholder(t cty.Type) cty.Value {
	switch {
	case t == cty.String || t == cty.DynamicPseudoType:
		return cty.StringVal("x")
	case t == cty.Number:
		return cty.NumberIntVal(1)
	case t == cty.Bool:
		return cty.False
	case t.IsListType():
		return cty.ListVal([]cty.Value{placeholder(t.ElementType())})
	case t.IsMapType():
		return cty.MapValEmpty(t.ElementType())
	}
	return cty.DynamicVal
}

// context evaluates every variable (default or placeholder, then
// overrides) and every local that can be evaluated (others unknown);
// resources and data sources are unknown.
func (m *module) context(over map[string]cty.Value) *hcl.EvalContext {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{},
		Functions: functions(m.dir)}
	vars := map[string]cty.Value{}
	for n, b := range m.variables {
		t := cty.DynamicPseudoType
		if a, ok := b.Body.Attributes["type"]; ok {
			if tt, d := typeexpr.TypeConstraint(a.Expr); !d.HasErrors() {
				t = tt
			}
		}
		v := placeholder(t)
		if a, ok := b.Body.Attributes["default"]; ok {
			if dv, d := a.Expr.Value(nil); !d.HasErrors() {
				if cv, err := convert.Convert(dv, t); err == nil {
					v = cv
				}
			}
		}
		if o, ok := over[n]; ok {
			v = o
		}
		vars[n] = v
	}
	ctx.Variables["var"] = cty.ObjectVal(vars)
	ctx.Variables["path"] = cty.ObjectVal(map[string]cty.Value{
		"module": cty.StringVal(m.dir)})
	ctx.Variables["count"] = cty.ObjectVal(map[string]cty.Value{
		"index": cty.NumberIntVal(0)})
	ctx.Variables["data"] = cty.DynamicVal
	for r := range m.resources {
		ctx.Variables[strings.SplitN(r, ".", 2)[0]] = cty.DynamicVal
	}
	for _, t := range []string{"random_password", "random_id", "random_string"} {
		ctx.Variables[t] = cty.DynamicVal
	}
	locals := map[string]cty.Value{}
	for n := range m.locals {
		locals[n] = cty.DynamicVal
	}
	// a fixed point: each pass evaluates with the last pass's locals
	for pass := 0; pass < len(m.locals)+1; pass++ {
		ctx.Variables["local"] = cty.ObjectVal(locals)
		next := map[string]cty.Value{}
		for n, a := range m.locals {
			v, d := a.Expr.Value(ctx)
			if d.HasErrors() {
				v = cty.DynamicVal
			}
			next[n] = v
		}
		locals = next
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx
}

// attr finds block.block.attribute under a resource ("metadata.x"
// also reads key x of a map attribute metadata).
func attr(b *hclsyntax.Block, path string) hclsyntax.Expression {
	parts := strings.Split(path, ".")
	body := b.Body
	for i, p := range parts {
		if a, ok := body.Attributes[p]; ok {
			if i == len(parts)-1 {
				return a.Expr
			}
			if o, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok {
				for _, it := range o.Items {
					k, d := it.KeyExpr.Value(nil)
					if !d.HasErrors() && k.Type() == cty.String &&
						k.AsString() == parts[i+1] {
						return it.ValueExpr
					}
				}
			}
			return nil
		}
		var next *hclsyntax.Body
		for _, nb := range body.Blocks {
			if nb.Type == p {
				next = nb.Body
				break
			}
		}
		if next == nil {
			return nil
		}
		body = next
	}
	return nil
}

func (m *module) eval(e hclsyntax.Expression, ctx *hcl.EvalContext) (cty.Value, bool) {
	v, d := e.Value(ctx)
	if d.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return cty.NilVal, false
	}
	return v, true
}

// number evaluates e to a whole number.
func (m *module) number(e hclsyntax.Expression, ctx *hcl.EvalContext) (int64, bool) {
	v, ok := m.eval(e, ctx)
	if !ok {
		return 0, false
	}
	v, err := convert.Convert(v, cty.Number)
	if err != nil {
		return 0, false
	}
	n, _ := v.AsBigFloat().Int64()
	return n, true
}

// instances: how many a resource makes under ctx (count, for_each,
// else one).
func (m *module) instances(b *hclsyntax.Block, ctx *hcl.EvalContext) (int64, bool) {
	if a, ok := b.Body.Attributes["count"]; ok {
		return m.number(a.Expr, ctx)
	}
	if a, ok := b.Body.Attributes["for_each"]; ok {
		v, ok := m.eval(a.Expr, ctx)
		if !ok || !v.CanIterateElements() {
			return 0, false
		}
		return int64(v.LengthInt()), true
	}
	return 1, true
}

// ---- checks ----

// refs: every traversal in every expression of the module, with the
// variable block it sits in (or "").
func (m *module) refs() map[string]bool {
	used := map[string]bool{}
	var visit func(body *hclsyntax.Body, own string)
	visit = func(body *hclsyntax.Body, own string) {
		for _, a := range body.Attributes {
			for _, t := range a.Expr.Variables() {
				if t.RootName() != "var" || len(t) < 2 {
					continue
				}
				if ga, ok := t[1].(hcl.TraverseAttr); ok && ga.Name != own {
					used[ga.Name] = true
				}
			}
		}
		for _, b := range body.Blocks {
			o := own
			if b.Type == "variable" {
				o = b.Labels[0]
			}
			visit(b.Body, o)
		}
	}
	for _, b := range m.bodies {
		visit(b, "")
	}
	return used
}

func (m *module) checkDocs() {
	used := m.refs()
	names := make([]string, 0, len(m.variables))
	for n := range m.variables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !describedIn(m.variables[n]) {
			m.fail("variable %s has no description", n)
		}
		if !used[n] {
			m.fail("variable %s is declared but never used", n)
		}
	}
	for n, b := range m.outputs {
		if !describedIn(b) {
			m.fail("output %s has no description", n)
		}
	}
	for _, n := range outputsWanted {
		if _, ok := m.outputs[n]; !ok {
			m.fail("output %s is missing", n)
		}
	}
}

// checkRefs: what plan would refuse first, since it cannot run here:
// every var., local., resource and data reference names something the
// module declares.
func (m *module) checkRefs() {
	seen := map[string]bool{}
	var visit func(body *hclsyntax.Body, iters map[string]bool, v bool)
	visit = func(body *hclsyntax.Body, iters map[string]bool, v bool) {
		for n, a := range body.Attributes {
			if v && n == "type" { // a type constraint, not references
				continue
			}
			for _, t := range a.Expr.Variables() {
				if what := m.undeclared(t, iters); what != "" && !seen[what] {
					seen[what] = true
					m.fail("%s:%d: %s is not declared",
						a.SrcRange.Filename[len(m.dir)+1:],
						t.SourceRange().Start.Line, what)
				}
			}
		}
		for _, b := range body.Blocks {
			inner := iters
			if b.Type == "dynamic" {
				inner = map[string]bool{b.Labels[0]: true}
				for k := range iters {
					inner[k] = true
				}
				if it, ok := b.Body.Attributes["iterator"]; ok {
					if n := hcl.ExprAsKeyword(it.Expr); n != "" {
						inner[n] = true
					}
				}
			}
			visit(b.Body, inner, b.Type == "variable")
		}
	}
	for _, b := range m.bodies {
		visit(b, map[string]bool{}, false)
	}
}

// undeclared: "" when t names something declared (or a built-in),
// else what it names.
func (m *module) undeclared(t hcl.Traversal, iters map[string]bool) string {
	root := t.RootName()
	attr := func(i int) string {
		if len(t) > i {
			if a, ok := t[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	switch {
	case iters[root], root == "count", root == "each", root == "path",
		root == "self", root == "terraform":
		return ""
	case root == "var":
		if _, ok := m.variables[attr(1)]; !ok {
			return "var." + attr(1)
		}
	case root == "local":
		if _, ok := m.locals[attr(1)]; !ok {
			return "local." + attr(1)
		}
	case root == "data":
		if _, ok := m.data[attr(1)+"."+attr(2)]; !ok {
			return "data." + attr(1) + "." + attr(2)
		}
	default:
		if _, ok := m.resources[root+"."+attr(1)]; !ok {
			return root + "." + attr(1)
		}
	}
	return ""
}

func describedIn(b *hclsyntax.Block) bool {
	a, ok := b.Body.Attributes["description"]
	if !ok {
		return false
	}
	v, d := a.Expr.Value(nil)
	return !d.HasErrors() && v.Type() == cty.String &&
		strings.TrimSpace(v.AsString()) != ""
}

func (m *module) checkShape(s spec) {
	ev, ok := m.variables["external_services"]
	if !ok {
		m.fail("variable external_services (the demo switch) is missing")
		return
	}
	if a, ok := ev.Body.Attributes["type"]; !ok {
		m.fail("external_services has no type")
	} else if t, d := typeexpr.TypeConstraint(a.Expr); d.HasErrors() || t != cty.Bool {
		m.fail("external_services must be a bool")
	}
	if _, ok := m.variables["secondary_count"]; !ok {
		m.fail("variable secondary_count is missing")
		return
	}
	full := m.context(map[string]cty.Value{
		"external_services": cty.True, "secondary_count": cty.NumberIntVal(7)})
	demo := m.context(map[string]cty.Value{
		"external_services": cty.False, "secondary_count": cty.NumberIntVal(7)})

	ptype := strings.SplitN(s.Primary, ".", 2)[0]
	for r := range m.resources {
		if strings.HasPrefix(r, ptype+".") && r != s.Primary {
			m.fail("%s: the primaries must be one resource (%s)", r, s.Primary)
		}
	}
	if p, ok := m.resources[s.Primary]; !ok {
		m.fail("resource %s (the primaries) is missing", s.Primary)
	} else {
		if n, ok := m.instances(p, full); !ok || n != 3 {
			m.fail("%s: want 3 primaries with external_services = true, got %s",
				s.Primary, shown(n, ok))
		}
		if n, ok := m.instances(p, demo); !ok || n != 1 {
			m.fail("%s: want 1 demo node with external_services = false, got %s",
				s.Primary, shown(n, ok))
		}
	}
	g, ok := m.resources[s.Group]
	if !ok {
		m.fail("resource %s (the secondaries' group) is missing", s.Group)
		return
	}
	if n, ok := m.instances(g, full); !ok || n != 1 {
		m.fail("%s: want one group with external_services = true, got %s",
			s.Group, shown(n, ok))
	}
	for _, a := range s.GroupSize {
		e := attr(g, a)
		if e == nil {
			m.fail("%s: no %s", s.Group, a)
			continue
		}
		if n, ok := m.number(e, full); !ok || n != 7 {
			m.fail("%s.%s is not var.secondary_count (secondary_count = 7 gave %s)",
				s.Group, a, shown(n, ok))
		}
	}
	if n, ok := m.instances(g, demo); ok && n != 0 {
		m.fail("%s: the demo (external_services = false) must have no group", s.Group)
	}
}

func shown(n int64, ok bool) string {
	if !ok {
		return "a value this check cannot evaluate"
	}
	return fmt.Sprint(n)
}

func (m *module) checkValue(what string, w want) {
	b, ok := m.resources[w.Resource]
	if !ok {
		m.fail("%s: resource %s is missing", what, w.Resource)
		return
	}
	e := attr(b, w.Path)
	if e == nil {
		m.fail("%s: %s has no %s", what, w.Resource, w.Path)
		return
	}
	v, ok := m.eval(e, m.context(map[string]cty.Value{
		"external_services": cty.True}))
	if ok && w.Bool {
		v, _ = convert.Convert(v, cty.String)
	}
	if ok && v.Type() == cty.String && w.Contains &&
		strings.Contains(v.AsString(), w.Value) {
		return
	}
	if !ok || v.Type() != cty.String || v.AsString() != w.Value {
		got := "a value this check cannot evaluate"
		if ok {
			got = fmt.Sprintf("%#v", v)
		}
		m.fail("%s: %s.%s must be %q, got %s", what, w.Resource, w.Path,
			w.Value, got)
	}
}

// reach: the files read by file()/templatefile() in e or in the locals
// it references, transitively; index: whether count.index is used.
func (m *module) reach(e hclsyntax.Expression, ctx *hcl.EvalContext,
	seen map[string]bool, files map[string]bool) (index bool) {
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		c, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok || (c.Name != "file" && c.Name != "templatefile") ||
			len(c.Args) == 0 {
			return nil
		}
		if v, ok := m.eval(c.Args[0], ctx); ok && v.Type() == cty.String {
			if abs, err := filepath.Abs(v.AsString()); err == nil {
				files[abs] = true
			}
		}
		return nil
	})
	for _, t := range e.Variables() {
		switch t.RootName() {
		case "count":
			index = true
		case "local":
			if len(t) < 2 {
				continue
			}
			ga, ok := t[1].(hcl.TraverseAttr)
			if !ok || seen[ga.Name] {
				continue
			}
			seen[ga.Name] = true
			if a, ok := m.locals[ga.Name]; ok {
				if m.reach(a.Expr, ctx, seen, files) {
					index = true
				}
			}
		}
	}
	return index
}

func (m *module) checkUserData(s spec, bootstrap string) {
	ctx := m.context(map[string]cty.Value{"external_services": cty.True})
	for i, w := range s.UserData {
		b, ok := m.resources[w.Resource]
		if !ok {
			m.fail("user data: resource %s is missing", w.Resource)
			continue
		}
		e := attr(b, w.Path)
		if e == nil {
			m.fail("user data: %s has no %s", w.Resource, w.Path)
			continue
		}
		files := map[string]bool{}
		index := m.reach(e, ctx, map[string]bool{}, files)
		if !files[bootstrap] {
			m.fail("user data: %s.%s does not come from ../node/bootstrap.sh",
				w.Resource, w.Path)
		}
		if i == 0 && !index {
			m.fail("user data: %s.%s does not tell a primary its index (count.index)",
				w.Resource, w.Path)
		}
		if i == 1 && index {
			m.fail("user data: %s.%s differs by instance; secondaries get identical user data",
				w.Resource, w.Path)
		}
	}
}

func (m *module) checkSecrets(s spec) {
	store, random := false, false
	for r := range m.resources {
		t := strings.SplitN(r, ".", 2)[0]
		store = store || t == s.SecretType
		random = random || strings.HasPrefix(t, "random_")
	}
	if !store {
		m.fail("no %s: join material must go through the cloud's secret store",
			s.SecretType)
	}
	if !random {
		m.fail("no random_* resource: the module must generate the join material")
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hclcheck DEPLOY_DIR")
		os.Exit(2)
	}
	deploy, err := filepath.Abs(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bootstrap := filepath.Join(deploy, "node", "bootstrap.sh")
	if _, err := os.Stat(bootstrap); err != nil {
		fmt.Fprintf(os.Stderr, "hclcheck: %v\n", err)
		os.Exit(2)
	}
	failed := false
	for _, cloud := range []string{"aws", "gcp", "azure"} {
		s := specs[cloud]
		m, err := load(filepath.Join(deploy, cloud))
		if err != nil {
			fmt.Printf("deploy/%s: %v\n", cloud, err)
			failed = true
			continue
		}
		m.checkDocs()
		m.checkRefs()
		m.checkShape(s)
		m.checkValue("health check", s.Health)
		m.checkValue("80 -> 443 redirect", s.Redirect)
		m.checkValue("scale-in drain", s.Drain)
		m.checkUserData(s, bootstrap)
		m.checkSecrets(s)
		for _, f := range m.fails {
			fmt.Printf("deploy/%s: %s\n", cloud, f)
		}
		if len(m.fails) > 0 {
			failed = true
			continue
		}
		fmt.Printf("deploy/%s: ok (%d variables, %d resources, %d outputs)\n",
			cloud, len(m.variables), len(m.resources), len(m.outputs))
	}
	if failed {
		os.Exit(1)
	}
}
