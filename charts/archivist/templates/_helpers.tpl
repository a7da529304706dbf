{{/* The chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "archivist.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects: the release name when it contains the chart name. */}}
{{- define "archivist.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "archivist.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "archivist.selectorLabels" -}}
app.kubernetes.io/name: {{ include "archivist.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "archivist.labels" -}}
helm.sh/chart: {{ include "archivist.chart" . }}
{{ include "archivist.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "archivist.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "archivist.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "archivist.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
RBAC. The verbs are the ones the operator's code uses (operator/src/controllers and
operator/src/kube); keep them in step when the code changes. Two lists:
- archivist.namespacedRules: objects in the watched namespace(s). A ClusterRole when every
  namespace is watched, a Role in `watchNamespace` otherwise.
- archivist.clusterRules: cluster-scoped objects, always a ClusterRole.
*/}}
{{- define "archivist.namespacedRules" -}}
# The operator's own kinds. BackupPolicy: patch sets the deletion-policy finalizer; ArchiveBackup:
# the policy controller creates runs and deletes pruned ones. Status is written with server-side
# apply (patch on /status).
- apiGroups: [archivist.dev]
  resources: [backuppolicies]
  verbs: [get, list, watch, patch]
# archivebackups: patch adds and removes the archivist.dev/release finalizer (held while a run
# may have the archive quiesced).
- apiGroups: [archivist.dev]
  resources: [archivebackups]
  verbs: [get, list, watch, create, delete, patch]
- apiGroups: [archivist.dev]
  resources: [backuppolicies/status, archivebackups/status]
  verbs: [get, patch]
# Children carry ownerReferences with blockOwnerDeletion: clusters with the
# OwnerReferencesPermissionEnforcement admission plugin require update on the owner's finalizers.
- apiGroups: [archivist.dev]
  resources: [backuppolicies/finalizers, archivebackups/finalizers]
  verbs: [update]
# The archive server workload: read and watch it (a policy sees its target come and go, the
# sweeper finds claimed workloads, both from metadata-only caches), scale it to 0 and back
# (Stop mode), annotate it.
- apiGroups: [apps]
  resources: [statefulsets, deployments]
  verbs: [get, list, watch, patch]
# Its pods: which are live and ready, and exec for freeze/thaw hooks. pods/exec needs `get`
# for WebSocket exec on API servers up to 1.29 and `create` from 1.30 on (and for SPDY).
# watch (metadata only, nothing stored): a pod going away wakes a stopping run at once; and
# the pods labelled archivist.dev/restore wake a restore drill when its copy becomes Ready.
# create and delete: a restore from a restic repository runs its reader pod
# (`<request>-repository`, restic waiting for the operator's exec commands) and deletes it when
# the restore ends.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [create, get]
# The last lines of a failed dump, restore or hook Job's pod are quoted in the run's status.
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# SQL dumps: a PVC and a Job per dump, deleted after the dump's snapshot is cut.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch, create, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, delete]
# master.secrets are copied into a Secret owned by the backup; restores read that copy, list the
# namespace's Secret names (never overwrite one) and create the restored Secrets. Backups and
# restores also read the Secrets they reference (SQL credentials, master.secrets) to replace
# their values by *** in the Job log tails and hook stderr they quote. A restore drill deletes
# the Secrets and PVCs its RestoreRequest restored (named in its mapping and labelled with it).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, create, delete]
# VolumeSnapshots: cut, read and deleted by their runs; an orphan (labelled archivist.dev/backup,
# its ArchiveBackup gone) is marked (patch) and, after a ClusterRetentionPolicy's grace period,
# deleted.
- apiGroups: [snapshot.storage.k8s.io]
  resources: [volumesnapshots]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# The RestoreRequest controller: its kind and status, the <request>-mapping ConfigMap (written
# with server-side apply), restored PVCs, and the SideBySide copy of the target workload (a
# StatefulSet or a Deployment).
# create and delete: a restore drill (verification.drillSchedule) creates a SideBySide
# RestoreRequest owned by its policy, and deletes it when the drill is over.
- apiGroups: [archivist.dev]
  resources: [restorerequests]
  verbs: [get, list, watch, patch, create, delete]
- apiGroups: [archivist.dev]
  resources: [restorerequests/status]
  verbs: [get, patch]
- apiGroups: [archivist.dev]
  resources: [restorerequests/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, update, patch]
- apiGroups: [apps]
  resources: [statefulsets, deployments]
  verbs: [create, delete]
{{- end }}

{{- define "archivist.clusterRules" -}}
# Cluster-wide retention rules, matched against the labels of the policy's Namespace (watched,
# metadata only, so a label change re-evaluates retention).
- apiGroups: [archivist.dev]
  resources: [clusterretentionpolicies]
  verbs: [get, list, watch]
# Their status (policies, restore points, storage, prunedTotal, orphans), written by the
# operator when it watches every namespace.
- apiGroups: [archivist.dev]
  resources: [clusterretentionpolicies/status]
  verbs: [get, patch]
# Events about a cluster policy (an orphan deleted) go to namespace default through the core
# API (events.k8s.io refuses a cluster-scoped object's Event outside kube-system).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
  {{- with .Values.watchNamespace }}
  resourceNames: [{{ . | quote }}]
  {{- end }}
# InPlace restores keep each old PV (reclaim policy set to Retain) before recreating its claim.
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, patch]
{{- end }}
