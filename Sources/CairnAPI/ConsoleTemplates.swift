import Mustache

/// The console's pages as Mustache templates (swift-mustache). `{{name}}` is HTML-escaped, so whatever a user
/// registered (ids, attributes, descriptions) is shown as text; `{{{body}}}` is used only for markup the console
/// rendered itself. The templates are compiled into the binary, so a copied `cairn` executable is the whole console.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do { try library.register(text, named: name) } catch { preconditionFailure("console template \(name): \(error)") }
        }
        return library
    }()

    static let templates: [String: String] = [
        "layout": layout, "login": login, "namespaces": namespaces, "namespace": namespace, "service": service, "live": live,
        "probes": probes, "probedElsewhere": probedElsewhere, "operations": operations, "audit": audit, "failure": failure,
    ]

    static let layout = """
        <!doctype html>
        <html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
        <title>{{title}} · Cairn</title><link rel=stylesheet href="/console/static/console.css"></head>
        <body><header><b>Cairn</b>
        {{#session}}
        <nav><a href="/console">Namespaces</a><a href="/console/operations">Operations</a><a href="/console/audit">Audit trail</a></nav>
        <form class=inline method=post action="/console/region"><input type=hidden name=csrf value="{{csrf}}">
        <span class=who>{{principal}} · {{accessKeyId}} ·</span>
        <input name=region id=region value="{{region}}" size=14 aria-label=Region><button id=switch-region>Switch</button></form>
        <form class=inline method=post action="/console/logout"><input type=hidden name=csrf value="{{csrf}}"><button id=signout>Sign out</button></form>
        {{/session}}
        </header><main>
        {{#notice}}<p class=notice id=flash-notice>{{.}}</p>{{/notice}}
        {{#error}}<p class=error id=flash-error>{{.}}</p>{{/error}}
        {{{body}}}
        </main>{{#live}}<script src="/console/static/live.js"></script>{{/live}}</body></html>
        """

    static let login = """
        <h1>Sign in to Cairn</h1>
        {{#dev}}<p class=notice id=dev-mode>This server runs with <code>--dev</code>: any access key ID and secret sign in.</p>{{/dev}}
        <form method=post action="/console/login" class=stack>
        <label>Access key ID <input name=accessKeyId id=accessKeyId autocomplete=username required></label>
        <label>Secret access key
        <input name=secretAccessKey id=secretAccessKey type=password autocomplete=current-password required></label>
        <label>Region <input name=region id=login-region value="{{region}}" required></label>
        <button id=signin>Sign in</button>
        </form>
        <p class=muted>Use an access key from Cairn's configuration (outside dev mode without configured keys, the generated
        one in <code>DATA_DIR/admin-credentials</code>). You see and may do what its policies allow; resources belong to a
        region, as in AWS.</p>
        """

    static let namespaces = """
        <h1>Namespaces <span class=muted>in {{region}}</span></h1>
        <table id=namespaces><tr><th>Name</th><th>Type</th><th>Services</th><th>ID</th><th>Description</th></tr>
        {{#namespaces}}
        <tr><td><a href="/console/namespaces/{{id}}">{{name}}</a></td><td>{{type}}</td><td>{{serviceCount}}</td>
        <td><code>{{id}}</code></td><td>{{description}}</td></tr>
        {{/namespaces}}
        {{^namespaces}}<tr><td colspan=5 class=muted>No namespaces in this region.</td></tr>{{/namespaces}}
        </table>
        """

    static let namespace = """
        <h1>Namespace {{name}}</h1>
        <dl><dt>ID</dt><dd><code>{{id}}</code></dd><dt>ARN</dt><dd><code>{{arn}}</code></dd><dt>Type</dt><dd>{{type}}</dd>
        <dt>Description</dt><dd>{{description}}</dd><dt>HTTP name</dt><dd>{{httpName}}</dd>
        {{#zone}}<dt>DNS zone</dt><dd>{{.}}</dd>{{/zone}}</dl>
        {{#dnssec}}<h2>DNSSEC</h2><div id=dnssec>
        {{#signed}}<p>Signed (ECDSA P-256, algorithm 13){{#roll}}, in a key roll: both keys sign{{/roll}}. Publish the DS at the
        parent zone.</p>
        <table><tr><th>Key tag</th><th>DNSKEY and DS</th></tr>
        {{#keys}}<tr><td>{{tag}}</td><td><code>{{dnskey}}</code><br><code>{{ds}}</code></td></tr>{{/keys}}</table>{{/signed}}
        {{^signed}}<p class=muted>Not signed (<code>cairn dnssec enable</code> signs it).</p>{{/signed}}
        </div>{{/dnssec}}
        <h2>Services</h2>
        {{#servicesError}}<p class=error>{{.}}</p>{{/servicesError}}
        <table id=services><tr><th>Service</th><th>Type</th><th>Instances</th><th>DNS records</th><th>ID</th></tr>
        {{#services}}
        <tr><td><a href="/console/services/{{id}}">{{name}}</a></td><td>{{type}}</td><td>{{instanceCount}}</td>
        <td>{{records}}</td><td><code>{{id}}</code></td></tr>
        {{/services}}
        {{^services}}<tr><td colspan=5 class=muted>No services.</td></tr>{{/services}}
        </table>
        """

    static let service = """
        <h1>Service {{name}} <span class=muted>in <a href="/console/namespaces/{{namespaceId}}">{{namespaceName}}</a></span></h1>
        <dl><dt>ID</dt><dd><code>{{serviceId}}</code></dd><dt>ARN</dt><dd><code>{{arn}}</code></dd><dt>Type</dt><dd>{{type}}</dd>
        <dt>Description</dt><dd>{{description}}</dd><dt>Health checking</dt><dd>{{healthChecking}}</dd></dl>
        {{>live}}
        <h2>Register an instance</h2>
        <form method=post action="/console/services/{{serviceId}}/register" class=stack>
        <input type=hidden name=csrf value="{{csrf}}">
        <label>Instance ID <input name=instanceId id=register-id required></label>
        <label>Attributes, one KEY=VALUE per line
        <textarea name=attributes id=register-attributes rows=4>AWS_INSTANCE_IPV4=</textarea></label>
        <button id=register>Register</button></form>
        """

    /// The part of the service page that follows the registry (replaced in place by live.js).
    static let live = """
        <div id=live data-version="{{version}}" data-source="/console/services/{{serviceId}}/live">
        <h2>Instances <span class=muted>(updates live)</span></h2>
        {{#instancesError}}<p class=error>{{.}}</p>{{/instancesError}}
        <div id=instances><table><tr><th>Instance</th><th>Health</th><th>Attributes</th><th>Actions</th></tr>
        {{#instances}}
        <tr id="instance-{{id}}"><td>{{id}}</td><td class="{{health}}" id="health-{{id}}">{{health}}</td>
        <td>{{#attributes}}<code>{{key}}={{value}}</code> {{/attributes}}</td>
        <td><form class=inline method=post action="/console/services/{{serviceId}}/deregister">
        <input type=hidden name=csrf value="{{csrf}}"><input type=hidden name=instanceId value="{{id}}">
        <button id="deregister-{{id}}">Deregister</button></form>
        {{#mark}}<form class=inline method=post action="/console/services/{{serviceId}}/health">
        <input type=hidden name=csrf value="{{csrf}}"><input type=hidden name=instanceId value="{{id}}">
        <input type=hidden name=status value="{{status}}"><button id="mark-{{id}}">Mark {{label}}</button></form>{{/mark}}
        {{#probed}}<a href="/console/services/{{serviceId}}/instances/{{id}}/probes">probe history</a>{{/probed}}</td></tr>
        {{/instances}}
        {{^instances}}<tr><td colspan=4 class=muted>No instances.</td></tr>{{/instances}}
        </table></div>
        <h2>DNS records as Cairn answers them</h2>
        <pre id=dns>{{dns}}</pre>
        </div>
        """

    static let probes = """
        <h1>Probe history of {{instanceId}}</h1>
        <p>Status <b class="{{status}}">{{status}}</b>{{#damped}} (held unhealthy: flapping){{/damped}} · {{check}} ·
        <a href="/console/services/{{serviceId}}">back to the service</a></p>
        <table id=probes><tr><th>Time</th><th>Result</th><th>Latency (ms)</th><th>Detail</th></tr>
        {{#probes}}<tr><td>{{time}}</td><td class="{{health}}">{{result}}</td><td>{{latency}}</td><td>{{detail}}</td></tr>{{/probes}}
        </table>
        """

    static let probedElsewhere = """
        <h1>Probe history of {{instanceId}}</h1>
        <p id=prober>Probed by cluster node <b>{{node}}</b>: the probe history is kept by the node that probes, so open this
        page on that node. <a href="/console/services/{{serviceId}}">back to the service</a></p>
        """

    static let operations = """
        <h1>Operations</h1>
        <table id=operations><tr><th>ID</th><th>Type</th><th>Status</th><th>Updated</th><th>Targets</th><th>Error</th></tr>
        {{#operations}}
        <tr><td><code>{{id}}</code></td><td>{{type}}</td><td class="{{status}}">{{status}}</td><td>{{updated}}</td>
        <td>{{targets}}</td><td>{{error}}</td></tr>
        {{/operations}}
        {{^operations}}<tr><td colspan=6 class=muted>No operations.</td></tr>{{/operations}}
        </table>
        {{#next}}<p><a id=older href="/console/operations?NextToken={{.}}">Older operations</a></p>{{/next}}
        """

    static let audit = """
        <h1>Audit trail</h1>
        <form method=get action="/console/audit" class=filters>
        <input name=EventName id=audit-event placeholder="Event, e.g. RegisterInstance" value="{{eventName}}">
        <input name=Principal id=audit-principal placeholder="Principal or access key" value="{{principal}}">
        <input name=Resource id=audit-resource placeholder="Namespace or service (ARN or id)" value="{{resource}}">
        <input name=StartTime id=audit-start placeholder="From (ISO 8601 or epoch s)" value="{{startTime}}">
        <input name=EndTime id=audit-end placeholder="Until" value="{{endTime}}">
        <button id=audit-filter>Filter</button></form>
        <table id=audit><tr><th>Time</th><th>Event</th><th>User</th><th>Source</th><th>Error</th><th>Request</th></tr>
        {{#records}}
        <tr><td>{{time}}</td><td>{{event}}</td><td>{{user}}</td><td>{{source}}</td><td>{{error}}</td><td><code>{{request}}</code></td></tr>
        {{/records}}
        {{^records}}<tr><td colspan=6 class=muted>No records match.</td></tr>{{/records}}
        </table>
        {{#next}}<p><a id=older href="{{.}}">Older records</a></p>{{/next}}
        <p class=muted>Newest first. Everything, as JSON lines: <code>cairn audit export</code>.</p>
        """

    static let failure = """
        <h1>{{title}}</h1><p class=error id=denied>{{message}}</p>
        """

    static let stylesheet = """
        body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
        header{background:#23303f;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:center;flex-wrap:wrap}
        header b{font-size:17px;letter-spacing:.5px} nav{flex:1} nav a{color:#cfe3ff;margin-right:14px;text-decoration:none}
        .who{color:#b7c3d0} main{padding:18px 24px;max-width:1200px} h1{font-size:20px;margin:4px 0 14px}
        h2{font-size:16px;margin:22px 0 8px} table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0001}
        th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e4e8ee;vertical-align:top} th{background:#eef1f5;font-weight:600}
        code,pre{font:12.5px ui-monospace,monospace} pre{background:#fff;padding:10px;border:1px solid #e4e8ee;overflow:auto}
        .HEALTHY{color:#137333;font-weight:600} .UNHEALTHY{color:#b3261e;font-weight:600} .UNKNOWN{color:#8a6d00;font-weight:600}
        .SUCCESS{color:#137333} .FAIL{color:#b3261e}
        .error{background:#fdecea;border:1px solid #f3b8b3;padding:8px 12px;color:#8c1d18}
        .notice{background:#e6f4ea;border:1px solid #b7dfc3;padding:8px 12px}
        form.inline{display:inline} button{cursor:pointer} .stack{display:grid;gap:8px;max-width:520px}
        .stack input,.stack textarea{width:100%;box-sizing:border-box} .filters{display:flex;gap:8px;margin-bottom:10px;flex-wrap:wrap}
        dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px;background:#fff;padding:10px} dt{color:#5b6b7c}
        input,textarea{font:inherit;padding:4px} .muted{color:#6b7a89}
        """

    /// Asks once a second whether the service changed (the live view's version is the service's `viewVersion`,
    /// which every registration, deregistration and health change moves) and swaps in the new part when it did.
    /// Follows the service: one long poll after another (the server answers on a change, or with 204 after
    /// `Console.liveWait`); after an error it waits 2 s before asking again.
    static let liveScript = """
        (function () {
          var live = document.getElementById('live');
          if (!live || !window.fetch) return;
          window.cairnLive = { updates: 0 };
          function later() { return new Promise(function (done) { setTimeout(done, 2000); }); }
          function poll() {
            live = document.getElementById('live');
            fetch(live.dataset.source + '?since=' + live.dataset.version, { credentials: 'same-origin', cache: 'no-store' })
              .then(function (r) {
                if (r.status === 204) return;
                if (r.status !== 200) return later();
                return r.text().then(function (markup) { live.outerHTML = markup; window.cairnLive.updates += 1; });
              })
              .catch(later)
              .then(poll);
          }
          poll();
        })();
        """
}
