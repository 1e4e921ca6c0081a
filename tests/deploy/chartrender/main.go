// chartrender renders a Helm chart the way `helm template` does, with Helm's
// own template engine: Go text/template, the sprig function library (minus
// env/expandenv, as Helm removes them) and Helm's additions (include, tpl,
// required, toYaml, fromYaml, toJson, fromJson, lookup, ...). Values are
// values.yaml coalesced with -f files (later wins; null deletes a key) and
// validated against values.schema.json with gojsonschema, as Helm 3 does.
//
// It exists because helm itself is not packaged for Debian; it builds offline
// from Debian's Go packages (tests/deploy/build-chartrender.sh).
//
//	chartrender -chart charts/trickle [-f values.yaml]... [-name trickle]
//	            [-namespace default] [-notes] > manifests.yaml
//
// Output: every rendered template that is not empty, as a YAML stream with
// "# Source: CHART/templates/FILE" headers like helm template; with -notes,
// the rendered NOTES.txt instead. Errors (schema, required, template) go to
// stderr with exit code 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	// sprig v3 (Debian installs it without the /v3 directory; GOPATH mode).
	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	chartDir := flag.String("chart", "", "chart directory")
	name := flag.String("name", "trickle", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	kubeVersion := flag.String("kube-version", "v1.29.0", "Capabilities.KubeVersion")
	var files valueFiles
	flag.Var(&files, "f", "values file (repeatable; later files win)")
	flag.Parse()
	if *chartDir == "" {
		fail(errors.New("-chart is required"))
	}
	out, err := render(*chartDir, files, *name, *namespace, *kubeVersion, *notes)
	if err != nil {
		fail(err)
	}
	os.Stdout.WriteString(out)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "chartrender: %v\n", err)
	os.Exit(1)
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// coalesce merges src over dst as Helm does for user values: maps merge key
// by key, anything else replaces, and a null in src deletes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// chartMeta maps Chart.yaml's keys to the capitalised names templates use
// (.Chart.Name, .Chart.AppVersion, ...).
func chartMeta(raw map[string]interface{}) map[string]interface{} {
	m := map[string]interface{}{}
	for k, v := range raw {
		m[strings.ToUpper(k[:1])+k[1:]] = v
	}
	if v, ok := raw["apiVersion"]; ok {
		m["APIVersion"] = v
	}
	return m
}

type files map[string][]byte

func (f files) Get(name string) string      { return string(f[name]) }
func (f files) GetBytes(name string) []byte { return f[name] }
func (f files) Glob(pattern string) files {
	out := files{}
	for n, b := range f {
		if ok, _ := path.Match(pattern, n); ok {
			out[n] = b
		}
	}
	return out
}

type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func render(chartDir string, valuesFiles []string, name, namespace, kubeVersion string, notesOnly bool) (string, error) {
	chartRaw, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	chartName, _ := chartRaw["name"].(string)
	if chartName == "" {
		return "", errors.New("Chart.yaml has no name")
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range valuesFiles {
		user, err := readYAMLMap(f)
		if err != nil {
			return "", err
		}
		values = coalesce(values, user)
	}
	if schema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json")); err == nil {
		if err := validateValues(schema, values); err != nil {
			return "", err
		}
	}

	// Every file of the chart outside templates/ is reachable with .Files.
	chartFiles := files{}
	templates := map[string]string{}
	err = filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			templates[path.Join(chartName, rel)] = string(data)
		} else if rel != "Chart.yaml" && rel != "values.yaml" && rel != "values.schema.json" {
			chartFiles[rel] = data
		}
		return nil
	})
	if err != nil {
		return "", err
	}

	t := template.New("gotpl").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includedNames := map[string]int{}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if includedNames[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		includedNames[name]++
		defer func() { includedNames[name]-- }()
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := t.Clone()
		if err != nil {
			return "", err
		}
		tt, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := tt.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["fromYamlArray"] = fromYAMLArray
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	// No cluster here: lookup finds nothing, as in `helm template`.
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	t.Funcs(funcs)

	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := t.New(n).Parse(templates[n]); err != nil {
			return "", fmt.Errorf("parse error in %s: %w", n, err)
		}
	}

	major := strings.TrimPrefix(strings.SplitN(kubeVersion, ".", 2)[0], "v")
	minor := ""
	if parts := strings.SplitN(kubeVersion, ".", 3); len(parts) > 1 {
		minor = parts[1]
	}
	top := func(templateName string) map[string]interface{} {
		return map[string]interface{}{
			"Values": values,
			"Chart":  chartMeta(chartRaw),
			"Release": map[string]interface{}{
				"Name": name, "Namespace": namespace, "Service": "Helm",
				"IsInstall": true, "IsUpgrade": false, "Revision": 1,
			},
			"Capabilities": map[string]interface{}{
				"KubeVersion": map[string]interface{}{
					"Version": kubeVersion, "GitVersion": kubeVersion, "Major": major, "Minor": minor,
				},
				"APIVersions": apiVersions{"v1", "apps/v1", "networking.k8s.io/v1", "policy/v1"},
			},
			"Template": map[string]interface{}{"Name": templateName, "BasePath": path.Join(chartName, "templates")},
			"Files":    chartFiles,
		}
	}

	var out strings.Builder
	for _, n := range names {
		base := path.Base(n)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notesOnly {
			continue
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, n, top(n)); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if notesOnly {
			out.WriteString(text)
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, strings.TrimRight(text, "\n"))
	}
	return out.String(), nil
}

func validateValues(schema []byte, values map[string]interface{}) error {
	// Round-trip through JSON so the values have JSON's types.
	data, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(data))
	if err != nil {
		return fmt.Errorf("values.schema.json: %w", err)
	}
	if result.Valid() {
		return nil
	}
	var msg strings.Builder
	msg.WriteString("values don't meet the specifications of the schema(s) in the following chart(s):")
	for _, e := range result.Errors() {
		fmt.Fprintf(&msg, "\n- %s", e)
	}
	return errors.New(msg.String())
}
