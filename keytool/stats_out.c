/*
 * stats_out: `sockseal stats` output.  Prometheus text exposition format
 * (version 0.0.4: what node_exporter's textfile collector reads), one
 * family at a time with its HELP and TYPE, label values escaped; or the
 * same numbers as one JSON object.  Counters are sums over the live
 * processes of a program: a process that exits takes its counts with it,
 * which Prometheus sees as a counter reset.
 */
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "stats_agg.h"

static const char *const results[STATS_RESULTS] = { "ok", "failed",
    "refused", "timeout" };
static const unsigned hist_ms[STATS_HIST] = STATS_HIST_MS;

/* S as a label value (Prometheus) or a JSON string body: \ " and newline
 * escaped, other control bytes dropped. */
static void
esc(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
prog_labels(FILE *f, const char *name, const char *program)
{
	fprintf(f, "%s{program=\"", name);
	esc(f, program);
	fputc('"', f);
}

static void
rule_labels(FILE *f, const char *name, const struct agg_rule *r)
{
	prog_labels(f, name, r->program);
	fputs(",rule=\"", f);
	esc(f, r->name);
	fprintf(f, "\",dir=\"%s\"", policy_dir_name((enum policy_dir)r->dir));
}

static void
print_progs(FILE *f, const struct agg *a)
{
	size_t i;

	family(f, "sockseal_processes", "gauge",
	    "Live processes running under the shim.");
	for (i = 0; i < a->nprog; i++) {
		prog_labels(f, "sockseal_processes", a->prog[i].program);
		fprintf(f, "} %u\n", a->prog[i].processes);
	}
	family(f, "sockseal_handshakes_in_flight", "gauge",
	    "Handshakes under way.");
	for (i = 0; i < a->nprog; i++) {
		prog_labels(f, "sockseal_handshakes_in_flight",
		    a->prog[i].program);
		fprintf(f, "} %lld\n", (long long)a->prog[i].handshakes);
	}
	family(f, "sockseal_reloads_total", "counter",
	    "Policy reloads that changed the policy in force.");
	for (i = 0; i < a->nprog; i++) {
		prog_labels(f, "sockseal_reloads_total", a->prog[i].program);
		fprintf(f, "} %llu\n", (unsigned long long)a->prog[i].reloads);
	}
	family(f, "sockseal_reload_failures_total", "counter",
	    "Policy reloads that failed (the last good policy stayed).");
	for (i = 0; i < a->nprog; i++) {
		prog_labels(f, "sockseal_reload_failures_total",
		    a->prog[i].program);
		fprintf(f, "} %llu\n",
		    (unsigned long long)a->prog[i].reload_failures);
	}
	family(f, "sockseal_policy_loaded_timestamp_seconds", "gauge",
	    "When the policy in force was loaded (Unix time).");
	for (i = 0; i < a->nprog; i++) {
		prog_labels(f, "sockseal_policy_loaded_timestamp_seconds",
		    a->prog[i].program);
		fputs(",policy=\"", f);
		esc(f, a->prog[i].policy);
		fprintf(f, "\"} %lld\n", (long long)a->prog[i].loaded);
	}
}

static void
key_labels(FILE *f, const char *name, const struct agg_key *k)
{
	prog_labels(f, name, k->program);
	fprintf(f, ",kind=\"%s\",name=\"", k->kind);
	esc(f, k->name);
	fputs("\",fingerprint=\"", f);
	esc(f, k->fpr);
	fputc('"', f);
}

static void
print_keys(FILE *f, const struct agg *a)
{
	size_t i;

	family(f, "sockseal_key_info", "gauge",
	    "A key, identity or peer's public key in force, by fingerprint.");
	for (i = 0; i < a->nkey; i++) {
		key_labels(f, "sockseal_key_info", &a->key[i]);
		fputs("} 1\n", f);
	}
	family(f, "sockseal_key_age_seconds", "gauge",
	    "Seconds since the key's file was last modified.");
	for (i = 0; i < a->nkey; i++) {
		if (a->key[i].mtime == 0)
			continue;       /* written in the policy itself */
		key_labels(f, "sockseal_key_age_seconds", &a->key[i]);
		fprintf(f, "} %lld\n", (long long)(a->now - a->key[i].mtime));
	}
}

static uint64_t
hist_count(const struct agg_rule *r)
{
	uint64_t n = 0;
	int b;

	for (b = 0; b <= STATS_HIST; b++)
		n += r->hs_hist[b];
	return n;
}

static void
print_rules(FILE *f, const struct agg *a)
{
	const struct agg_rule *r;
	uint64_t cum;
	size_t i, k, j;
	int b;

	family(f, "sockseal_connections_sealed_total", "counter",
	    "Connections whose handshake completed.");
	for (i = 0; i < a->nrule; i++) {
		rule_labels(f, "sockseal_connections_sealed_total", &a->rule[i]);
		fprintf(f, "} %llu\n", (unsigned long long)a->rule[i].sealed);
	}
	family(f, "sockseal_connections_total", "counter",
	    "Connections that ended, refused or failed, by result and "
	    "reason code.");
	for (i = 0; i < a->nrule; i++)
		for (k = 0; k < STATS_RESULTS; k++)
			for (j = 0; j < REASON_COUNT; j++) {
				if (a->rule[i].ended[k][j] == 0)
					continue;
				rule_labels(f, "sockseal_connections_total",
				    &a->rule[i]);
				fprintf(f, ",result=\"%s\",reason=\"%s\"} %llu\n",
				    results[k], reason_name((int)j),
				    (unsigned long long)a->rule[i].ended[k][j]);
			}
	family(f, "sockseal_live_connections", "gauge",
	    "Sealed connections open now.");
	for (i = 0; i < a->nrule; i++) {
		rule_labels(f, "sockseal_live_connections", &a->rule[i]);
		fprintf(f, "} %lld\n", (long long)a->rule[i].live);
	}
	family(f, "sockseal_handshake_duration_seconds", "histogram",
	    "Time from the connection's start to its completed handshake.");
	for (i = 0; i < a->nrule; i++) {
		r = &a->rule[i];
		for (b = 0, cum = 0; b < STATS_HIST; b++) {
			cum += r->hs_hist[b];
			rule_labels(f, "sockseal_handshake_duration_seconds_bucket",
			    r);
			fprintf(f, ",le=\"%g\"} %llu\n", hist_ms[b] / 1000.0,
			    (unsigned long long)cum);
		}
		rule_labels(f, "sockseal_handshake_duration_seconds_bucket", r);
		fprintf(f, ",le=\"+Inf\"} %llu\n",
		    (unsigned long long)hist_count(r));
		rule_labels(f, "sockseal_handshake_duration_seconds_sum", r);
		fprintf(f, "} %.6f\n", r->hs_sum_us / 1e6);
		rule_labels(f, "sockseal_handshake_duration_seconds_count", r);
		fprintf(f, "} %llu\n", (unsigned long long)hist_count(r));
	}
	family(f, "sockseal_bytes_total", "counter",
	    "The program's bytes on sealed connections (plaintext), by "
	    "direction: in, read by the program; out, written by it.");
	for (i = 0; i < a->nrule; i++) {
		rule_labels(f, "sockseal_bytes_total", &a->rule[i]);
		fprintf(f, ",direction=\"in\"} %llu\n",
		    (unsigned long long)a->rule[i].bytes_in);
		rule_labels(f, "sockseal_bytes_total", &a->rule[i]);
		fprintf(f, ",direction=\"out\"} %llu\n",
		    (unsigned long long)a->rule[i].bytes_out);
	}
}

void
stats_print_prom(FILE *f, const struct agg *a)
{
	print_progs(f, a);
	print_keys(f, a);
	print_rules(f, a);
}

static void
json_str(FILE *f, const char *key, const char *v, const char *sep)
{
	fprintf(f, "\"%s\":\"", key);
	esc(f, v);
	fprintf(f, "\"%s", sep);
}

static void
json_rule(FILE *f, const struct agg_rule *r)
{
	size_t k, j;
	const char *sep = "";
	int b;

	fputs("{", f);
	json_str(f, "rule", r->name, ",");
	fprintf(f, "\"dir\":\"%s\",\"sealed\":%llu,\"live\":%lld,"
	    "\"bytes_in\":%llu,\"bytes_out\":%llu,\"ended\":[",
	    policy_dir_name((enum policy_dir)r->dir),
	    (unsigned long long)r->sealed, (long long)r->live,
	    (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
	for (k = 0; k < STATS_RESULTS; k++)
		for (j = 0; j < REASON_COUNT; j++) {
			if (r->ended[k][j] == 0)
				continue;
			fprintf(f, "%s{\"result\":\"%s\",\"reason\":\"%s\","
			    "\"count\":%llu}", sep, results[k],
			    reason_name((int)j),
			    (unsigned long long)r->ended[k][j]);
			sep = ",";
		}
	fputs("],\"handshake\":{\"buckets_ms\":[", f);
	for (b = 0; b < STATS_HIST; b++)
		fprintf(f, "%s[%u,%llu]", b ? "," : "", hist_ms[b],
		    (unsigned long long)r->hs_hist[b]);
	fprintf(f, "],\"over_ms\":%llu,\"count\":%llu,\"sum_seconds\":%.6f}}",
	    (unsigned long long)r->hs_hist[STATS_HIST],
	    (unsigned long long)hist_count(r), r->hs_sum_us / 1e6);
}

void
stats_print_json(FILE *f, const struct agg *a)
{
	size_t i, j;
	const char *sep;

	fprintf(f, "{\"time\":%lld,\"removed\":%u,\"programs\":[",
	    (long long)a->now, a->removed);
	for (i = 0; i < a->nprog; i++) {
		const struct agg_prog *p = &a->prog[i];

		fputs(i ? ",{" : "{", f);
		json_str(f, "program", p->program, ",");
		fprintf(f, "\"processes\":%u,\"handshakes_in_flight\":%lld,"
		    "\"reloads\":%llu,\"reload_failures\":%llu,",
		    p->processes, (long long)p->handshakes,
		    (unsigned long long)p->reloads,
		    (unsigned long long)p->reload_failures);
		json_str(f, "policy", p->policy, ",");
		fputs("\"pids\":[", f);
		for (j = 0; j < p->processes &&
		    j < sizeof(p->pids) / sizeof(p->pids[0]); j++)
			fprintf(f, "%s%d", j ? "," : "", p->pids[j]);
		fprintf(f, "],\"policy_loaded\":%lld,\"keys\":[",
		    (long long)p->loaded);
		for (j = 0, sep = ""; j < a->nkey; j++) {
			const struct agg_key *k = &a->key[j];

			if (strcmp(k->program, p->program) != 0)
				continue;
			fprintf(f, "%s{", sep);
			json_str(f, "kind", k->kind, ",");
			json_str(f, "name", k->name, ",");
			json_str(f, "fingerprint", k->fpr, ",");
			if (k->mtime != 0)
				fprintf(f, "\"age_seconds\":%lld}",
				    (long long)(a->now - k->mtime));
			else
				fputs("\"age_seconds\":null}", f);
			sep = ",";
		}
		fputs("],\"rules\":[", f);
		for (j = 0, sep = ""; j < a->nrule; j++) {
			if (strcmp(a->rule[j].program, p->program) != 0)
				continue;
			fputs(sep, f);
			json_rule(f, &a->rule[j]);
			sep = ",";
		}
		fputs("]}", f);
	}
	fputs("]}\n", f);
}
