from tests.wallet.consent.conftest import grant, NAME, BIRTH, ID_NUMBER


def test_smoke(client, consent, bank, enrol):
    citizen = enrol()
    req = bank.request()
    cid = req["id"]
    view = client.get(f"/wallet/me/consents/{cid}", headers=citizen.session)
    assert view.status_code == 200, view.text
    resp = grant(client, citizen.session, cid)
    assert resp.status_code == 200, resp.text
    rel = bank.release(cid)
    assert rel.status_code == 200, rel.text
    print(rel.json()["items"], len(rel.json()["presentation"]))
    rec = client.get(f"/consent/consents/{cid}/receipt", headers=bank.headers)
    assert rec.status_code == 200, rec.text
    print(consent.worker.run_once())
    print(client.get("/wallet/me/history", headers=citizen.session).json()[:3])
