#!/usr/bin/env bash
# Build fdp's deployables and deploy one of the two stacks with the AWS CLI.
#
#   production: VPC, S3 zones, MWAA, Glue 5.0, Redshift Serverless (cloudformation/production.yaml)
#   lite:       one small EC2 host running docker-compose.yml, S3 lake (cloudformation/lite.yaml)
#
# --dry-run prints every command (prefixed "+ ") without running any of them; values that only
# AWS can return (bucket names, object versions) are shown as <placeholders>. The API key, when
# FDP_ALPHAVANTAGE_API_KEY is set, is sent to Secrets Manager on stdin and never printed.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: infrastructure/deploy.sh [--mode production|lite] [--env dev|staging|prod]
                                [--region REGION] [--stack-name NAME] [--alert-email ADDRESS]
                                [--dry-run]
Environment: FDP_ALPHAVANTAGE_API_KEY (stored in the stack's secret when set),
             PYTHON (default python3), BUNDLE_CMD (default "make mwaa-bundle").
EOF
}

mode=production
env_name=dev
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-1}}
stack=""
alert_email=""
dry_run=0
while (($#)); do
    case $1 in
        --mode) mode=${2:?--mode needs a value}; shift 2 ;;
        --env) env_name=${2:?--env needs a value}; shift 2 ;;
        --region) region=${2:?--region needs a value}; shift 2 ;;
        --stack-name) stack=${2:?--stack-name needs a value}; shift 2 ;;
        --alert-email) alert_email=${2:?--alert-email needs a value}; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "deploy.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case $mode in production | lite) ;; *) echo "deploy.sh: --mode must be production or lite" >&2; exit 2 ;; esac
case $env_name in dev | staging | prod) ;; *) echo "deploy.sh: --env must be dev, staging or prod" >&2; exit 2 ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
bundle_cmd=${BUNDLE_CMD:-make mwaa-bundle}
templates=infrastructure/cloudformation
stack=${stack:-fdp-$mode-$env_name}
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
wheel=fdp-$version-py3-none-any.whl

# Every command is echoed to fd 3 (stdout), even one whose output is captured.
exec 3>&1
echo_command() {
    printf '+' >&3
    printf ' %q' "$@" >&3
    printf '\n' >&3
}

# Print a command shell-quoted, then run it unless this is a dry run.
run() {
    echo_command "$@"
    ((dry_run)) || "$@"
}

# Like run, for a command whose output the script needs; a dry run yields the placeholder $1.
capture() {
    local placeholder=$1
    shift
    echo_command "$@"
    if ((dry_run)); then
        printf '%s\n' "$placeholder"
    else
        "$@"
    fi
}

output() {
    capture "<$1>" aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

stack_exists() {
    ((dry_run)) && { capture "" aws cloudformation describe-stacks --region "$region" --stack-name "$stack" >/dev/null; return 1; }
    aws cloudformation describe-stacks --region "$region" --stack-name "$stack" >/dev/null 2>&1
}

deploy_stack() {
    local template=$1
    shift
    run aws cloudformation deploy --region "$region" --stack-name "$stack" \
        --template-file "$template" --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM \
        --no-fail-on-empty-changeset --tags project=fdp environment="$env_name" \
        --parameter-overrides Environment="$env_name" AlertEmail="$alert_email" "$@"
}

store_api_key() {
    [[ -n ${FDP_ALPHAVANTAGE_API_KEY:-} ]] || return 0
    local secret
    secret=$(output AlphaVantageSecretArn)
    echo_command aws secretsmanager put-secret-value --region "$region" --secret-id "$secret" \
        --secret-string file:///dev/stdin "<<<" "***"
    ((dry_run)) || printf '%s' "$FDP_ALPHAVANTAGE_API_KEY" \
        | aws secretsmanager put-secret-value --region "$region" --secret-id "$secret" \
            --secret-string file:///dev/stdin >/dev/null
}

put_versioned() {
    capture "<version of $2>" aws s3api put-object --region "$region" --bucket "$1" --key "$2" \
        --body "$3" --query VersionId --output text
}

deploy_production() {
    local template=$templates/production.yaml bucket req_v start_v plugins_v
    run "$python" -m pip wheel --no-deps --wheel-dir dist/wheel .
    # shellcheck disable=SC2086  # BUNDLE_CMD is a command line
    run $bundle_cmd
    if ! stack_exists; then
        # first deploy: create everything but MWAA, which needs the bundle in its bucket
        deploy_stack "$template" DeployMwaa=false
    fi
    bucket=$(output MwaaBucketName)
    run aws s3 sync --region "$region" --delete dist/mwaa/dags "s3://$bucket/dags"
    req_v=$(put_versioned "$bucket" requirements.txt dist/mwaa/requirements.txt)
    start_v=$(put_versioned "$bucket" startup.sh dist/mwaa/startup.sh)
    plugins_v=$(put_versioned "$bucket" plugins.zip dist/mwaa/plugins.zip)
    run aws s3 cp --region "$region" src/fdp/engines/spark_job.py "s3://$bucket/glue/spark_job.py"
    run aws s3 cp --region "$region" "dist/wheel/$wheel" "s3://$bucket/glue/$wheel"
    store_api_key
    deploy_stack "$template" DeployMwaa=true \
        RequirementsObjectVersion="$req_v" StartupScriptObjectVersion="$start_v" \
        PluginsObjectVersion="$plugins_v" GlueScriptKey=glue/spark_job.py FdpWheelKey="glue/$wheel"
}

deploy_lite() {
    local template=$templates/lite.yaml bucket instance
    run mkdir -p dist
    run tar -czf dist/fdp-src.tar.gz Dockerfile .dockerignore docker-compose.yml docker grafana \
        src dags config pyproject.toml README.md LICENSE
    deploy_stack "$template"
    bucket=$(output LakeBucketName)
    run aws s3 cp --region "$region" dist/fdp-src.tar.gz "s3://$bucket/deploy/fdp-src.tar.gz"
    store_api_key
    instance=$(output InstanceId)
    run aws ssm send-command --region "$region" --instance-ids "$instance" \
        --document-name AWS-RunShellScript --comment "fdp redeploy" \
        --parameters 'commands=["/usr/local/bin/fdp-redeploy"]'
}

"deploy_$mode"
run aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
    --query "Stacks[0].Outputs" --output table
