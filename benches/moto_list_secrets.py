"""How long moto itself takes to page through ListSecrets (the floor under the
replicate bench's no-change time). Run: .peers/venv/bin/python benches/moto_list_secrets.py 10000"""
import subprocess, time, socket, boto3, os, sys
s=socket.socket(); s.bind(("127.0.0.1",0)); port=s.getsockname()[1]; s.close()
p=subprocess.Popen([os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".peers", "bin", "moto_server"),"-H","127.0.0.1","-p",str(port)],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1",port),0.2).close(); break
        except OSError: time.sleep(0.1)
    c=boto3.client("secretsmanager",endpoint_url=f"http://127.0.0.1:{port}",region_name="us-east-1",aws_access_key_id="a",aws_secret_access_key="b")
    n=int(sys.argv[1])
    t=time.time()
    for i in range(n):
        c.create_secret(Name=f"vault/app/{i//100}/s{i}",SecretString="{}",Tags=[{"Key":"managed-by","Value":"vault-replicate"},{"Key":"vault-path","Value":f"app/{i}"},{"Key":"vault-version","Value":"1"},{"Key":"vault-mount","Value":"secret"}])
    print(f"create {n}: {time.time()-t:.1f}s")
    for filt in ([{"Key":"tag-key","Values":["managed-by"]},{"Key":"tag-value","Values":["vault-replicate"]}], None):
        t=time.time(); pages=0; token=None; count=0
        while True:
            kw={"MaxResults":100,"IncludePlannedDeletion":True}
            if filt: kw["Filters"]=filt
            if token: kw["NextToken"]=token
            r=c.list_secrets(**kw); pages+=1; count+=len(r["SecretList"])
            token=r.get("NextToken")
            if not token: break
        print(f"list {'filtered' if filt else 'unfiltered'}: {pages} pages, {count} secrets, {time.time()-t:.2f}s")
finally:
    p.terminate(); p.wait()
