{{/* Names ------------------------------------------------------------------------------ */}}

{{/* <release>-mlbench, or the release name when it already says mlbench (at most 40
characters, so that every suffix still fits a DNS label). */}}
{{- define "mlbench.fullname" -}}
{{- if contains "mlbench" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-mlbench" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mlbench.labels" -}}
app.kubernetes.io/name: mlbench
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: (list $ "api-server"). Never app=mlbench +
component=worker: those select the runs' worker pods. */}}
{{- define "mlbench.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: mlbench
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "mlbench.componentLabels" -}}
{{ include "mlbench.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "mlbench.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "mlbench.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "mlbench.apiServerName" -}}
{{- printf "%s-api-server" (include "mlbench.fullname" .) -}}
{{- end -}}

{{/* The api-server's in-cluster root URL (no trailing slash). */}}
{{- define "mlbench.apiServerUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "mlbench.apiServerName" .) .Release.Namespace .Values.service.port -}}
{{- end -}}

{{/* The Service of the original mlbench's API (port 80), by the name the original's
documentation gives it: <release>-mlbench-master. */}}
{{- define "mlbench.masterName" -}}
{{- printf "%s-master" (include "mlbench.fullname" .) -}}
{{- end -}}

{{/* The labels by which the original mlbench's clients find "the master": the api-server's
pod and the Service in front of its sidecar, nothing else of the chart. */}}
{{- define "mlbench.masterLabels" -}}
app: mlbench
component: master
{{- end -}}

{{- define "mlbench.nginxImage" -}}
{{- printf "%s:%s" .Values.images.nginx.repository .Values.images.nginx.tag -}}
{{- end -}}

{{/* nginx.conf of the original API's sidecar: http://<pod IP>:80/api/... is the mlbench API
(/mlbench/api/...), /api/v2/... Airflow's own API, / the dashboard, anything else the
api-server unchanged. The sidecar runs unprivileged with `-p /tmp/` (an emptyDir): the pid
file and temp paths are relative to it. tests/helm runs this file through nginx. */}}
{{- define "mlbench.originalApiNginxConf" -}}
# The original mlbench's API (its clients call http://<master>:80/api/...) in front of the
# api-server on 127.0.0.1:8080. Paths are relative to the prefix (nginx -p /tmp/).
worker_processes 1;
pid nginx.pid;
error_log stderr warn;

events {
    worker_connections 1024;
}

http {
    access_log /dev/stdout;
    server_tokens off;
    absolute_redirect off;
    client_body_temp_path client_body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;

    # Requests (metric batches, form posts) and answers (a run's zip) are streamed through.
    client_max_body_size {{ .Values.originalApi.maxBodySize }};
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    proxy_http_version 1.1;

    # What the client asked for, and what a proxy in front of this one (the Ingress) said.
    map $http_host $mlbench_host {
        default $http_host;
        "" $server_addr:$server_port;
    }
    map $http_x_forwarded_host $mlbench_forwarded_host {
        default $http_x_forwarded_host;
        "" $mlbench_host;
    }
    map $http_x_forwarded_proto $mlbench_forwarded_proto {
        default $http_x_forwarded_proto;
        "" $scheme;
    }
    map $http_x_forwarded_port $mlbench_forwarded_port {
        default $http_x_forwarded_port;
        "" $server_port;
    }
    proxy_set_header Host $mlbench_host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Host $mlbench_forwarded_host;
    proxy_set_header X-Forwarded-Proto $mlbench_forwarded_proto;
    proxy_set_header X-Forwarded-Port $mlbench_forwarded_port;
    proxy_set_header Connection "";

    upstream api_server {
        server 127.0.0.1:8080;
        keepalive 8;
    }

    server {
        listen 80;

        # Airflow's own REST API, unchanged
        location /api/v2 {
            proxy_pass http://api_server;
        }
        # the original's API: the mlbench API
        location /api/ {
            proxy_pass http://api_server/mlbench/api/;
        }
        # the original's dashboard URL (`mlbench get-dashboard-url`): the dashboard
        location = / {
            return 302 /mlbench/;
        }
        location / {
            proxy_pass http://api_server;
        }
    }
}
{{- end -}}

{{- define "mlbench.credentialsSecret" -}}
{{- printf "%s-credentials" (include "mlbench.fullname" .) -}}
{{- end -}}

{{- define "mlbench.adminSecret" -}}
{{- .Values.auth.existingSecret | default (include "mlbench.credentialsSecret" .) -}}
{{- end -}}

{{- define "mlbench.adminSecretKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretKey }}{{- else -}}admin-password{{- end -}}
{{- end -}}

{{- define "mlbench.postgresqlName" -}}
{{- printf "%s-postgresql" (include "mlbench.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the database URLs, and its keys. */}}
{{- define "mlbench.databaseSecret" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "mlbench.postgresqlName" . -}}
{{- else -}}
{{- .Values.externalDatabase.existingSecret | default (printf "%s-database" (include "mlbench.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{- define "mlbench.airflowUrlKey" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret -}}{{ .Values.externalDatabase.airflowUrlKey }}{{- else -}}airflow-url{{- end -}}
{{- end -}}

{{- define "mlbench.mlbenchUrlKey" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret -}}{{ .Values.externalDatabase.mlbenchUrlKey }}{{- else -}}mlbench-url{{- end -}}
{{- end -}}

{{- define "mlbench.dataClaim" -}}
{{- if .Values.workers.data.existingClaim -}}
{{- .Values.workers.data.existingClaim -}}
{{- else if .Values.workers.data.persistence.enabled -}}
{{- printf "%s-data" (include "mlbench.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "mlbench.airflowImage" -}}
{{- printf "%s:%s" .Values.images.airflow.repository (.Values.images.airflow.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Pods ------------------------------------------------------------------------------- */}}

{{- define "mlbench.podSecurityContext" -}}
runAsUser: 50000
runAsGroup: 0
fsGroup: 0
runAsNonRoot: true
{{- end -}}

{{- define "mlbench.containerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "mlbench.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "mlbench.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 }}
      key: {{ index . 2 }}
{{- end -}}

{{/* The environment of every Airflow container: Airflow's configuration and mlbench's
settings (MLBENCH_*), secrets by reference. */}}
{{- define "mlbench.airflowEnv" -}}
{{- $credentials := include "mlbench.credentialsSecret" . -}}
{{- $database := include "mlbench.databaseSecret" . -}}
{{- $api := include "mlbench.apiServerUrl" . -}}
- name: AIRFLOW__CORE__EXECUTOR
  value: {{ .Values.airflow.executor }}
- name: AIRFLOW__CORE__PARALLELISM
  value: {{ .Values.airflow.parallelism | quote }}
- name: AIRFLOW__CORE__LOAD_EXAMPLES
  value: "False"
- name: AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION
  value: "False"
- name: AIRFLOW__CORE__DAGS_FOLDER
  value: /opt/airflow/dags
- name: AIRFLOW__CORE__PLUGINS_FOLDER
  value: /opt/airflow/plugins
- name: AIRFLOW__CORE__AUTH_MANAGER
  value: airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
- name: AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS
  value: admin:admin,mlbench:admin
- name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  value: {{ printf "%s/execution/" $api | quote }}
{{- $away := int (.Values.airflow.apiAwaySeconds | default 180) }}
- name: AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS
  value: {{ div $away 5 | quote }}
- name: AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT
  value: {{ mul $away 2 | quote }}
- name: MLBENCH_API_WAIT
  value: {{ $away | quote }}
{{ include "mlbench.secretEnv" (list "AIRFLOW__CORE__FERNET_KEY" $credentials "fernet-key") }}
{{ include "mlbench.secretEnv" (list "AIRFLOW__API__SECRET_KEY" $credentials "api-secret-key") }}
{{ include "mlbench.secretEnv" (list "AIRFLOW__API_AUTH__JWT_SECRET" $credentials "jwt-secret") }}
{{ include "mlbench.secretEnv" (list "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" $database (include "mlbench.airflowUrlKey" .)) }}
{{ include "mlbench.secretEnv" (list "AIRFLOW_CONN_MLBENCH_API" $credentials "mlbench-connection") }}
{{- if .Values.ingress.enabled }}
- name: AIRFLOW__API__BASE_URL
  value: {{ printf "%s://%s/" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host | quote }}
{{- end }}
{{- if eq .Values.airflow.executor "KubernetesExecutor" }}
- name: AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE
  value: {{ .Release.Namespace }}
- name: AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE
  value: /opt/airflow/pod_templates/pod_template_file.yaml
- name: AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY
  value: {{ .Values.images.airflow.repository }}
- name: AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG
  value: {{ .Values.images.airflow.tag | default .Chart.AppVersion | quote }}
{{- end }}
{{ include "mlbench.secretEnv" (list "MLBENCH_DATABASE_URL" $database (include "mlbench.mlbenchUrlKey" .)) }}
- name: MLBENCH_API_URL
  value: {{ printf "%s/mlbench" $api | quote }}
- name: MLBENCH_AUTH
  value: {{ .Values.auth.mode | default "airflow" | quote }}
- name: MLBENCH_BACKEND
  value: kubernetes
- name: MLBENCH_NAMESPACE
  value: {{ .Release.Namespace }}
- name: MLBENCH_IMAGE_REGISTRY
  value: {{ .Values.workers.imageRegistry | quote }}
- name: MLBENCH_MAX_WORKERS
  value: {{ .Values.workers.maxWorkers | quote }}
- name: MLBENCH_POD_CACHE_SECONDS
  value: {{ .Values.workers.podCacheSeconds | quote }}
{{- with (include "mlbench.dataClaim" .) }}
- name: MLBENCH_DATA_VOLUME_CLAIM
  value: {{ . }}
{{- end }}
{{- with .Values.workers.data.mirrorUrl }}
- name: MLBENCH_DATA_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.workers.data.checksums }}
- name: MLBENCH_DATA_CHECKSUMS
  value: {{ toJson . | quote }}
{{- end }}
{{- if .Values.workers.gpu.enabled }}
- name: MLBENCH_GPU_NODE_SELECTOR
  value: {{ toJson .Values.workers.gpu.nodeSelector | quote }}
- name: MLBENCH_GPU_TOLERATIONS
  value: {{ toJson .Values.workers.gpu.tolerations | quote }}
{{- end }}
{{- with .Values.airflow.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Waits until Airflow's metadata DB is migrated (by the migrate Job). */}}
{{- define "mlbench.waitForMigrations" -}}
- name: wait-for-migrations
  image: {{ include "mlbench.airflowImage" . }}
  imagePullPolicy: {{ .Values.images.airflow.pullPolicy }}
  args: [airflow, db, check-migrations, --migration-wait-timeout=600]
  securityContext:
    {{- include "mlbench.containerSecurityContext" . | nindent 4 }}
  env:
    {{- include "mlbench.airflowEnv" . | nindent 4 }}
{{- end -}}
