/* GET /: the web UI.  One static page that polls /state and draws every node
 * as sockets → NUMA domains → cores, coloured by allocation, plus the
 * frameworks and their tasks.  No external assets.  The page holds no
 * state: /state needs the web session that `phx ui` puts in the address's
 * fragment (#token=..., never sent to a server), which the page keeps in
 * the tab's sessionStorage and sends as `Authorization: Bearer`. */
#include <stdio.h>
#include <string.h>

#include "daemons/master/master.h"
#include "lib/http.h"
#include "lib/mac.h"

static const char page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Phalanx</title><style>"
    "body{font:14px system-ui,sans-serif;margin:1em;background:#f6f7f9;color:#222}"
    "h1{font-size:20px;margin:0 0 .5em}h2{font-size:16px;margin:1em 0 .3em}"
    ".node{display:inline-block;vertical-align:top;background:#fff;border:1px solid "
    "#ccd;"
    "border-radius:6px;margin:4px;padding:6px}.node.lost,.node.unreachable{opacity:.5}"
    ".sock{border:1px dashed #99a;margin:3px;padding:3px;display:inline-block;"
    "vertical-align:top}.numa{border:1px solid #bbc;margin:2px;padding:2px;display:"
    "inline-block}.core{display:inline-block;width:12px;height:12px;margin:1px;"
    "border-radius:2px;background:#8c8}.core.used{background:#d55}small{color:#667}"
    "table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ccd;"
    "padding:2px 6px;text-align:left}</style></head><body><h1>Phalanx</h1>"
    "<div id=\"sum\"></div><h2>Nodes</h2><div id=\"nodes\"></div><h2>Frameworks</h2>"
    "<div id=\"fws\"></div><script>"
    "function esc(s){return String(s).replace(/[&<>\"]/g,c=>({'&':'&amp;','<':'&lt;',"
    "'>':'&gt;','\"':'&quot;'}[c]))}"
    "function parse(l){const s=new Set();if(!l)return s;for(const p of l.split(',')){"
    "const [a,b]=p.split('-').map(Number);for(let i=a;i<=(b===undefined?a:b);i++)"
    "s.add(i)}return s}"
    "function node(a){const t=a.topology,free=parse(a.free_cores);let h='<div "
    "class=\"'+"
    "'node '+esc(a.state)+'\"><b>'+esc(a.name)+'</b> <small>'+esc(a.state)+"
    "(a.drained?' drained: '+esc(a.drain_reason||''):'')+'</small><br>';"
    "if(t&&t.sockets){for(const s of t.sockets){h+='<div class=\"sock\"><small>socket "
    "'+"
    "s.id+'</small><br>';for(const n of s.numa){"
    "h+='<div class=\"numa\"><small>numa '+n.id+'</small><br>';for(const c of n.cores){"
    "h+='<span class=\"core'+(free.has(c.id)?'':' used')+"
    "'\" title=\"core '+c.id+'\"></span>'}h+='</div>'}h+='</div>'}}return h+'</div>'}"
    "const hm=location.hash.match(/token=([0-9A-Za-z.]+)/);if(hm){"
    "sessionStorage.setItem('phx-token',hm[1]);history.replaceState(null,'',"
    "location.pathname)}const tok=sessionStorage.getItem('phx-token');"
    "function say(t){document.getElementById('sum').textContent=t}"
    "async function tick(){"
    "try{const r=await fetch('state',tok?{headers:{Authorization:'Bearer '+tok}}:{});"
    "if(r.status===401){const e=await r.json();say((tok?(e.error||'not authorised')+"
    "'. ':'No session. ')+'Run \\u201cphx ui\\u201d and open the address it "
    "prints.');return}"
    "const st=await r.json();"
    "let c=0,f=0;for(const a of st.agents){if(a.resources&&a.state==='up'){"
    "c+=a.resources.cores;f+=a.resources.cores_free}}"
    "document.getElementById('sum').textContent=st.agents.length+' nodes, "
    "'+(c-f)+'/'+c+"
    "' cores in use';document.getElementById('nodes').innerHTML=st.agents.map(node)"
    ".join('');let h='<table><tr><th>framework</th><th>user</th><th>role</th><th>share"
    "</th><th>tasks</th></tr>';for(const w of "
    "st.frameworks||[]){h+='<tr><td>'+esc(w.name)"
    "+' <small>'+esc(w.id.slice(0,8))+(w.connected?'':' "
    "(disconnected)')+'</small></td><td>'"
    "+esc(w.user)+'</td><td>'+esc(w.role)+'</td><td>'+w.share.toFixed(3)+'</td><td>'+"
    "w.tasks.map(t=>esc(t.id)+'@'+esc(t.agent)+' '+esc(t.state.replace('TASK_','')))"
    ".join('<br>')+'</td></tr>'}document.getElementById('fws').innerHTML=h+'</table>'}"
    "catch(e){document.getElementById('sum').textContent='master unreachable'}}"
    "tick();setInterval(tick,2000)</script></body></html>";

/* The Content-Security-Policy: the page's one script by its SHA-256 (no
 * inline handler or injected script runs), fetches to this origin only. */
static const char *csp(void)
{
    static char text[512];
    if (text[0])
        return text;
    const char *s = strstr(page, "<script>") + 8, *e = strstr(s, "</script>");
    char hex[PHX_MAC_HEX_LEN + 1];
    unsigned char bin[PHX_MAC_LEN];
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char hash[48];
    size_t o = 0;
    if (phx_sha256_hex(s, (size_t)(e - s), hex) < 0 ||
        phx_mac_from_hex(hex, bin, sizeof(bin)) < 0)
        return "default-src 'none'"; /* the page then shows nothing */
    for (size_t i = 0; i < sizeof(bin); i += 3) {
        unsigned v = (unsigned)bin[i] << 16 |
                     (i + 1 < sizeof(bin) ? (unsigned)bin[i + 1] << 8 : 0) |
                     (i + 2 < sizeof(bin) ? bin[i + 2] : 0);
        hash[o++] = b64[v >> 18 & 63];
        hash[o++] = b64[v >> 12 & 63];
        hash[o++] = i + 1 < sizeof(bin) ? b64[v >> 6 & 63] : '=';
        hash[o++] = i + 2 < sizeof(bin) ? b64[v & 63] : '=';
    }
    hash[o] = '\0';
    snprintf(text, sizeof(text),
             "default-src 'none'; script-src 'sha256-%s'; style-src 'unsafe-inline'; "
             "connect-src 'self'; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'",
             hash);
    return text;
}

void phx_master_webui(phx_master_t *m, struct evhttp_request *req)
{
    (void)m;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Content-Security-Policy", csp());
    phx_http_reply_text(req, 200, "text/html; charset=utf-8", page);
}
